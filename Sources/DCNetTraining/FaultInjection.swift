import Foundation

/// A fault to inject into a training run, for the tests of failure handling (Tests/integration):
/// `DCNET_FAULT=rank:R,step:S,kind:K` makes rank R misbehave at global step S (1-based).
///
/// Kinds:
/// - `throw`: an error only that rank knows of, thrown after its backward has started every
///   gradient all-reduce and before it waits for them (the worst moment: requests in flight).
/// - `nan`: that rank's local gradients are NaN (its loss stays finite), as from a diverging
///   micro-batch; after the all-reduce every rank's averaged gradients are NaN.
///
/// Read here only, once per process; unset means no fault.
public struct InjectedFault: Equatable, Sendable {
    public enum Kind: String, Sendable { case `throw`, nan }
    public var rank: Int
    public var step: Int
    public var kind: Kind

    public static let variable = "DCNET_FAULT"

    /// The fault from the environment; a malformed value is an error (a test that meant to inject
    /// a fault must not pass because nothing was injected).
    public static func fromEnvironment() throws -> InjectedFault? {
        guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else { return nil }
        return try parse(text)
    }

    public static func parse(_ text: String) throws -> InjectedFault {
        var fields: [String: String] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: ":", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw InjectedFaultError(text: text) }
            fields[kv[0]] = kv[1]
        }
        guard let rank = fields["rank"].flatMap(Int.init), let step = fields["step"].flatMap(Int.init),
            let kind = fields["kind"].flatMap(Kind.init(rawValue:)), rank >= 0, step >= 1, fields.count == 3
        else { throw InjectedFaultError(text: text) }
        return InjectedFault(rank: rank, step: step, kind: kind)
    }
}

public struct InjectedFaultError: Error, CustomStringConvertible {
    public let text: String
    public var description: String {
        "\(InjectedFault.variable)=\(text): expected rank:R,step:S,kind:throw|nan (R ≥ 0, S ≥ 1)"
    }
}

/// What a `throw` fault throws: a rank-local failure, never agreed with the others.
public struct InjectedFailure: Error, CustomStringConvertible {
    public let step: Int
    public var description: String {
        "injected fault (\(InjectedFault.variable)) at step \(step), with gradient all-reduces in flight"
    }
}

extension Trainer {
    /// Hands this rank's fault to the gradient exchange: at the fault's step, `nan` poisons every
    /// bucket of this rank's gradients before its all-reduce, and `throw` throws once every
    /// all-reduce is in flight. The step itself has no fault code.
    func inject(_ fault: InjectedFault) {
        switch fault.kind {
        case .nan:
            exchange.beforeBucketStarts = { [unowned self] bucket in
                if progress.globalStep + 1 == fault.step { bucket.update(repeating: .nan) }
            }
        case .throw:
            exchange.beforeWaiting = { [unowned self] in
                if progress.globalStep + 1 == fault.step { throw InjectedFailure(step: fault.step) }
            }
        }
    }
}
