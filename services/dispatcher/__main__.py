from services.dispatcher.service import main

main()
