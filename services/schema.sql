-- The one-stop office's and document management's tables (database egov, owner egov).
CREATE TABLE IF NOT EXISTS applications (
    id          uuid PRIMARY KEY,
    citizen_id  text NOT NULL,
    procedure   text NOT NULL,
    department  text NOT NULL,
    form        jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'decided')),
    result      text CHECK (result IN ('approved', 'rejected')),
    received_at timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz
);
CREATE INDEX IF NOT EXISTS applications_queue ON applications (department, status, received_at);
CREATE TABLE IF NOT EXISTS documents (
    id             bigserial PRIMARY KEY,
    application_id uuid NOT NULL,
    kind           text NOT NULL,
    title          text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS documents_application ON documents (application_id);
