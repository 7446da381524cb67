import Foundation

/// An experiment-suite definition (experiments/*.json, copied to `<suite>/suite.json`): the groups of
/// the report and the budget text. Other members are for scripts/experiments and ignored here.
public struct ExperimentSuite: Sendable, Equatable {
    public var groups: [ExperimentGroup]
    public var budget: String?

    public init(groups: [ExperimentGroup], budget: String? = nil) {
        self.groups = groups
        self.budget = budget
    }

    /// Why a groups file cannot be used; the text names the file.
    public struct DecodingFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Decodes a suite definition (an object with a `"groups"` member) or a bare JSON array of groups
    /// (the older `groups.json`). `path` is used in error messages.
    public static func decode(_ data: Data, path: String) throws -> ExperimentSuite {
        do {
            if data.first(where: { !" \t\r\n".utf8.contains($0) }) == UInt8(ascii: "{") {
                let suite = try JSONDecoder().decode(Definition.self, from: data)
                guard let groups = suite.groups else {
                    throw DecodingFailure(description: "\(path): no \"groups\" member")
                }
                return ExperimentSuite(groups: groups, budget: suite.budget)
            }
            return ExperimentSuite(groups: try JSONDecoder().decode([ExperimentGroup].self, from: data))
        } catch let e as DecodingFailure {
            throw e
        } catch {
            throw DecodingFailure(description: "\(path): not a groups file: \(error)")
        }
    }

    private struct Definition: Decodable {
        var groups: [ExperimentGroup]?
        var budget: String?
    }
}
