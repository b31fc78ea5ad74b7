from emulators.labelstudio.annotator import main

main()
