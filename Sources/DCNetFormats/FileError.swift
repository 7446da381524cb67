/// An error in a file we read or write. The text always names the file (or directory) and says
/// what is wrong with it; `kind` is for code (and tests) that tell errors apart.
public struct FileError<K: Hashable & Sendable>: Error, CustomStringConvertible, Sendable, Equatable {
    public typealias Kind = K
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

/// What can be wrong when locating, reading or decoding a data file.
public enum DataErrorKind: String, Hashable, Sendable {
    case missingDirectory, missingFile, io, emptyFile, partialRecord, labelOutOfRange,
        corruptGzip, truncatedGzip, tooLarge, badClassNames, invalidArgument
}
/// An error while locating, reading or decoding a data file.
public typealias DataError = FileError<DataErrorKind>
