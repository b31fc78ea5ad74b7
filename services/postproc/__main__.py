from services.postproc.service import main

main()
