from rehearsal.cli import main

raise SystemExit(main())
