"""The playbooks held to their own ecosystem's checks: ansible-lint's production profile, and the
PostgreSQL role's schema step run by real ansible-playbook against a real PostgreSQL server."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOT

VENV = ROOT / ".venv"
ANSIBLE = ROOT / "ansible"
SCHEMA = ROOT / "services" / "schema.sql"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def test_the_playbooks_pass_ansible_lint_production_profile():
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(VENV), "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}"}
    r = subprocess.run([str(VENV / "bin" / "ansible-lint"), "--offline", "--profile", "production", "-f", "pep8",
                        "--nocolor", "."], cwd=ANSIBLE, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in r.stderr + r.stdout


@pytest.fixture
def postgres():
    """A PostgreSQL server of the test's own on a Unix socket (no TCP), removed afterwards."""
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists():
        pytest.skip("needs root and Debian's PostgreSQL (make setup installs it)")
    root = Path(tempfile.mkdtemp(prefix="egovlab-pg-"))
    root.chmod(0o755)
    shutil.chown(root, "postgres", "postgres")
    data, run = root / "data", root / "run"
    as_pg = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*as_pg, "mkdir", str(run)], check=True)
        subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "--auth-local=peer", "-E", "UTF8"],
                       check=True, capture_output=True)
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                        f"-k {run} -c listen_addresses=''", "start"], check=True, capture_output=True, timeout=60)
        yield run
    finally:
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _schema_step(tmp_path: Path, run: Path, schema: Path) -> subprocess.CompletedProcess:
    play = tmp_path / "schema.yml"
    play.write_text(f"""- name: The PostgreSQL role's database step, alone
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    postgresql_bin: {PG_BIN}
    postgresql_run: {run}
    egov_schema: {schema}
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    egov_db_password: test-password-egov
    egov_replicator_password: test-password-replicator
  tasks:
    - name: Roles, database and schema
      ansible.builtin.include_role:
        name: postgresql
        tasks_from: database
""")
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    return subprocess.run([str(VENV / "bin" / "ansible-playbook"), "-i", "localhost,", str(play)], env=env,
                          capture_output=True, text=True, timeout=300)


def _tables(run: Path) -> str:
    return subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-h", str(run), "-d", "egov",
                           "-tAc", "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                                   "WHERE schemaname = 'public'"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_a_missing_schema_file_fails_the_deploy_and_the_real_one_loads(tmp_path, postgres):
    missing = _schema_step(tmp_path, postgres, tmp_path / "no-such-schema.sql")
    assert missing.returncode != 0, missing.stdout[-3000:]
    assert "No such file or directory" in missing.stdout and "failed=1" in missing.stdout
    assert _tables(postgres) == ""  # nothing pretended: the database has no tables

    broken = tmp_path / "broken.sql"
    broken.write_text("CREATE TABLE documents (id serial PRIMARY KEY);\nCREATE TABLE oops (;\n")
    failed = _schema_step(tmp_path, postgres, broken)
    assert failed.returncode != 0 and "syntax error" in failed.stdout
    assert _tables(postgres) == ""  # one transaction: the statement before the error is not kept

    done = _schema_step(tmp_path, postgres, SCHEMA)
    assert done.returncode == 0 and "failed=0" in done.stdout, done.stdout[-3000:]
    assert "documents" in _tables(postgres).split(",")
    again = _schema_step(tmp_path, postgres, SCHEMA)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
