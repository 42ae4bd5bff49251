"""`python -m nano_code` is the same as the `nano-code` command."""

from nano_code.cli.main import main

raise SystemExit(main())
