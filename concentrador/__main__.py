from concentrador.cli import main

raise SystemExit(main())
