from diffeditor.cli import main

raise SystemExit(main())
