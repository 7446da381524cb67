// Clients that import DCNetData for the data order also reach the generators (the trainer seeds
// its parameter initialisation and attack starts with them) without a second import.
@_exported import DCNetRandom
