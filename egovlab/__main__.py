from egovlab.cli import main

main()
