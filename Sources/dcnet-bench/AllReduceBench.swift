enum AllReduceBench { static func run() throws {} }
