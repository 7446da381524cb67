import ArgumentParser
import DCNetReport
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write <suite>/report.md and SVG plots from the runs' metrics.jsonl and attacks.jsonl.",
        discussion: """
            Groups come from --groups: a JSON array of groups, or a suite definition (experiments/*.json) \
            whose "groups" member is that array (and whose "budget" text is shown unless --budget is given). \
            Without --groups, <suite>/suite.json then <suite>/groups.json are tried.
            """)

    @Option(help: "Suite directory holding <run>/metrics.jsonl (and <run>/attacks.jsonl).") var suite: String
    @Option(help: "Groups file (JSON array) or suite definition with a \"groups\" member.") var groups: String?
    @Option(help: "Directory for report.md and the plots (default: the suite directory).") var output: String?
    @Option(help: "Report title.") var title: String = "DCNet experiment report"
    @Option(help: "Budget text for the header (default: the suite definition's \"budget\").") var budget: String?
    @Option(help: "Command that produced the suite, for the header (default: this command line).") var command: String?
    @Option(
        help: ArgumentHelp(
            "Directory holding <run>/features.safetensors files (dcnet-dist features; usually the suite): adds a "
                + "feature-geometry section with the angular spreads per run and PCA scatter plots, and feeds the "
                + "better-separation claims (default: the suite directory when a group has such a claim).")
    )
    var features: String?

    func run() throws {
        let suiteURL = URL(fileURLWithPath: suite).standardizedFileURL
        let candidates =
            groups.map { [$0] } ?? [
                suiteURL.appendingPathComponent("suite.json").path,
                suiteURL.appendingPathComponent("groups.json").path,
            ]
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw ValidationError("no groups: pass --groups FILE (looked for \(candidates.joined(separator: ", ")))")
        }
        let suite = try loadSuite(path)
        let loaded = suite.groups, definedBudget = suite.budget
        var report = ExperimentReport(suiteDirectory: suiteURL, groups: loaded)
        report.replicates = suite.replicates
        report.preregistration = suite.preregistration
        report.title = title
        report.budget = budget ?? definedBudget
        let invocation = CommandLine.arguments.map(shellQuote).joined(separator: " ")
        report.command = command ?? invocation
        report.reportCommit = gitCommit() ?? "unknown (not a git checkout)"
        // Without --command the header's command already is this invocation.
        if command != nil { report.reportCommand = invocation }
        if let output { report.outputDirectory = URL(fileURLWithPath: output).standardizedFileURL }
        // A feature-separation claim needs the features: without --features they are looked for in the suite.
        let featureDirectory =
            features.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? (loaded.contains { $0.test == .betterSeparation } ? suiteURL : nil)
        if let featureDirectory {
            report.features = featureEntries(
                from: featureDirectory, outputDirectory: report.outputDirectory ?? suiteURL)
        }

        let written = try report.write()
        print("wrote \(written.reportFile.path) and \(written.plotFiles.count) plot(s); \(loaded.count) group(s)")
        for m in written.missingRuns { print("  missing \(m.run): \(m.reason)") }
    }

    func loadSuite(_ path: String) throws -> ExperimentSuite {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try ExperimentSuite.decode(data, path: path)
        } catch let e as ExperimentSuite.DecodingFailure {
            throw ValidationError(e.description)
        }
    }
}

func shellQuote(_ s: String) -> String {
    if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// `git rev-parse --short HEAD` in the current directory (nil outside a checkout), or $DCNET_COMMIT.
func gitCommit() -> String? {
    if let c = ProcessInfo.processInfo.environment["DCNET_COMMIT"], !c.isEmpty { return c }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "rev-parse", "--short", "HEAD"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    let s = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return s.isEmpty ? nil : s
}
