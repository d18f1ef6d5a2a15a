from capstone.cli import main

main()
