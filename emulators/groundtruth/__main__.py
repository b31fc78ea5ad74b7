from emulators.groundtruth.service import main

main()
