print("dcnet-dist")
