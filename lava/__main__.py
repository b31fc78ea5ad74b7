from lava.cli import main

main()
