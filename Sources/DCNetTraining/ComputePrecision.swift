import BLAS
import DCNetTensor
import MPI

/// `--precision`: the arithmetic of the convolution and linear GEMMs. bf16 rounds their operands
/// to bfloat16 and accumulates in fp32 (oneDNN's matmul); everything else stays fp32.
public enum PrecisionRequest: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case fp32, bf16
    /// bf16 where every rank's CPU has native bf16 dot products (AVX512-BF16 or AMX-BF16) and
    /// oneDNN loads, fp32 elsewhere.
    case auto

    public var description: String { rawValue }

    /// Whether this process can compute in bf16 and, if not, what is missing and what to do.
    public static func localBF16Support() -> (supported: Bool, detail: String) {
        let cpu = CPUBF16Features.host
        guard cpu.hasNativeBF16 else {
            return (
                false,
                "this CPU has no native bf16 dot products (neither AVX512-BF16 nor AMX-BF16 in cpuid); "
                    + "use --precision fp32 (or auto) on it"
            )
        }
        switch OneDNN.availability {
        case .unavailable(let reason):
            return (
                false,
                "bf16 compute needs oneDNN 2.x (\(OneDNN.libraryName)), which could not be loaded: \(reason); "
                    + "install it (apt-get install libdnnl-dev) or use --precision fp32"
            )
        case .available(let version):
            guard OneDNN.usesNativeBF16 else {
                return (
                    false,
                    "oneDNN \(version) does not dispatch to bf16 instructions on this CPU "
                        + "(it chose \(OneDNN.effectiveISA)); use --precision fp32"
                )
            }
            return (true, "\(cpu), oneDNN \(version) (\(OneDNN.effectiveISA))")
        }
    }

    /// The precision every rank uses, agreed across ranks. `bf16` that cannot run on some rank ends
    /// the job on every rank (an agreed `AgreedFailure` naming what is missing); `auto` takes bf16 only if
    /// every rank can, and says at start which it chose and why. Sets oneDNN's thread count to
    /// `threads` when bf16 is chosen.
    public func resolve(communicator: Communicator, console: Console, threads: Int) throws -> Precision {
        let rank = communicator.rank
        switch self {
        case .fp32:
            return .fp32
        case .bf16:
            let detail = try communicator.agree("checking --precision bf16") { () throws -> String in
                let (supported, why) = Self.localBF16Support()
                if !supported { throw LocalFailure(why) }
                return why
            }
            OneDNN.setThreads(threads)
            console.print("dcnet-dist: precision bf16 (GEMM operands bf16, fp32 accumulation): \(detail)")
            return .bf16
        case .auto:
            let (supported, why) = Self.localBF16Support()
            // The vote names the lowest rank without bf16: size − rank is largest for it.
            let size = communicator.size
            let vote = try communicator.agree("agreeing on --precision auto", vote: supported ? 0 : Int32(size - rank))
            {}
            .vote
            if vote == 0 {
                OneDNN.setThreads(threads)
                console.print("dcnet-dist: precision auto chose bf16: every rank has native bf16 (\(why))")
                return .bf16
            }
            let firstUnsupported = size - Int(vote)
            let reason = firstUnsupported == rank ? why : "rank \(firstUnsupported) cannot compute in bf16"
            console.print("dcnet-dist: precision auto chose fp32: \(reason)")
            return .fp32
        }
    }
}
