from ccv.cli.app import main

main()
