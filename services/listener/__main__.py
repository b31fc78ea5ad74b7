from services.listener.service import main

main()
