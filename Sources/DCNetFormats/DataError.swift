/// An error while locating, reading or decoding a data file. The text always names the
/// file (or directory) and says what is wrong with it.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case missingDirectory, missingFile, io, emptyFile, partialRecord, labelOutOfRange,
            corruptGzip, truncatedGzip, badClassNames, invalidArgument
    }
    public let kind: Kind
    /// The file or directory concerned.
    public let path: String
    /// What is wrong, without the path.
    public let message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind; self.path = path; self.message = message
    }
    public var description: String { "\(path): \(message)" }
}
