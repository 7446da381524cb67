import Foundation

/// An experiment-suite definition (experiments/*.json, copied to `<suite>/suite.json`): the groups of
/// the report and the budget text. Other members are for scripts/experiments and ignored here.
public struct ExperimentSuite: Sendable, Equatable {
    public var groups: [ExperimentGroup]
    public var budget: String?
    /// A run with `"seeds"` is trained once per seed as `<name>-s<seed>` (scripts/experiments):
    /// the run directories of each such name.
    public var replicates: [String: [String]]
    /// The comparisons written into the definition before its first run (nil: none registered).
    public var preregistration: Preregistration?

    public init(
        groups: [ExperimentGroup], budget: String? = nil, replicates: [String: [String]] = [:],
        preregistration: Preregistration? = nil
    ) {
        self.groups = groups
        self.budget = budget
        self.replicates = replicates
        self.preregistration = preregistration
    }

    /// `"preregistration"` of a definition: when and by which rule, and each comparison as registered.
    public struct Preregistration: Sendable, Equatable, Decodable {
        public var registered: String?
        public var rule: String?
        public var comparisons: [Comparison]
        public var exploratory: [String]?

        public struct Comparison: Sendable, Equatable, Decodable {
            /// "P1", "P2a": a group answers it when its `registration` is this id or its prefix ("P2").
            public var id: String
            public var name: String
            public var quantity: String
            public var direction: String
            public var sides: [String]
            public var seeds: [Int]

            public init(id: String, name: String, quantity: String, direction: String, sides: [String], seeds: [Int]) {
                self.id = id; self.name = name; self.quantity = quantity; self.direction = direction
                self.sides = sides; self.seeds = seeds
            }
        }

        public init(registered: String?, rule: String?, comparisons: [Comparison], exploratory: [String]? = nil) {
            self.registered = registered; self.rule = rule; self.comparisons = comparisons
            self.exploratory = exploratory
        }
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
                var replicates: [String: [String]] = [:]
                for run in suite.runs ?? [] {
                    if let seeds = run.seeds { replicates[run.name] = seeds.map { "\(run.name)-s\($0)" } }
                }
                return ExperimentSuite(
                    groups: groups, budget: suite.budget, replicates: replicates,
                    preregistration: suite.preregistration)
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
        var runs: [Run]?
        var preregistration: Preregistration?

        struct Run: Decodable {
            var name: String
            var seeds: [Int]?
        }
    }
}
