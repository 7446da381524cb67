import DCNetData
import DCNetLayers
import DCNetMetrics
import DCNetModels
import DCNetTensor
import Foundation
import TestSupport
import XCTest

@testable import DCNetEvaluation
@testable import DCNetTraining

/// scripts/experiments with a stub dcnet-dist: finished runs and attacks are skipped on a rerun,
/// unfinished runs resume with --resume, attacks wait for their runs.
final class ExperimentSuiteRunnerTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func shell(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The directory, stub binary, call log and suite definition paths of a stub suite in `directory`.
    private func stubPaths(_ directory: TempDir) -> (String, String, String, String) {
        (directory.path, directory.file("stub"), directory.file("calls.log"), directory.file("suite.json"))
    }

    /// scripts/experiments (a failure when it is missing), skipping the test where jq, which it needs, is not installed.
    private func experimentsScript() throws -> String {
        let script = Self.root.appendingPathComponent("scripts/experiments").path
        guard FileManager.default.isExecutableFile(atPath: script) else {
            throw MissingTestInput(description: "\(script) is missing or not executable")
        }
        guard jqInstalled() else { throw XCTSkip("jq not installed") }
        return script
    }

    /// A stub dcnet-dist that logs each call (train fails for the run named in $STUB_FAIL) and a
    /// definition of two runs, a (white-box attacked, features) and b (attacked by transfer from a).
    private func writeTinySuite(stub: String, log: String, definition: String) throws {
        try """
        #!/usr/bin/env bash
        # Stub dcnet-dist: logs each call; train fails for the run named in $STUB_FAIL; the flag
        # check (not logged) rejects the run named in $STUB_BAD_FLAGS.
        if [[ " $* " == *" --check-flags "* ]]; then
            if [[ -n ${STUB_BAD_FLAGS:-} && " $* " == *"/$STUB_BAD_FLAGS/checkpoints "* ]]; then
                printf 'Error: --stub-flag is wrong for %s\nUsage: dcnet-dist train\n' "$STUB_BAD_FLAGS" >&2
                exit 64
            fi
            exit 0
        fi
        echo "$*" >> "\(log)"
        cmd=$1; shift
        while [[ $# -gt 0 ]]; do
            case $1 in
                --checkpoint-dir) ckpt=$2 ;; --metrics) metrics=$2 ;; --output) outputs+=("$2") ;;
                --transfer-output) outputs+=("$2") ;; --out) out=$2 ;;
            esac
            shift
        done
        case $cmd in
            train)
                mkdir -p "$ckpt"; touch "$ckpt/ckpt-00000001.safetensors"
                run=$(basename "$(dirname "$ckpt")")
                [[ $run == "${STUB_FAIL:-}" ]] && exit 3
                echo '{"kind":"epoch","epoch":1,"test_accuracy":0.5}' >> "$metrics" ;;
            attack) for o in "${outputs[@]}"; do echo '{"kind":"attack"}' >> "$o"; done ;;
            features) touch "$out"; echo '{}' > "${out%.safetensors}.geometry.json" ;;
            export-model) touch "$out" ;;
        esac
        exit 0
        """.write(toFile: stub, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub)
        try """
        {"name": "tiny",
         "scales": {"default": {"epochs": 1, "train_limit": 0, "eval_limit": 0, "attack_limit": 10, "bim_steps": 2}},
         "train_flags": ["--width", "0.25"],
         "runs": [{"name": "a", "flags": ["--operator", "baseline"]}, {"name": "b", "flags": ["--operator", "tanh"]}],
         "features": ["a"],
         "attacks": {"methods": ["fgsm"], "epsilons": [1, 2], "white_box": ["a"],
                     "black_box": [{"source": "a", "targets": ["b"]}]},
         "groups": []}
        """.write(toFile: definition, atomically: true, encoding: .utf8)
    }

    /// The stub's calls logged since the last drain.
    private func drainCalls(_ log: String) -> [String] {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: log)
        return text.split(separator: "\n").map(String.init)
    }

    /// A run whose flags `train --check-flags` rejects stops the suite before anything starts, naming
    /// the run and the problem; the suite directory is not touched.
    func testRejectedFlagsStopTheSuiteBeforeTheFirstRun() throws {
        let (script, suiteDirectory) = (try experimentsScript(), TempDir("suite"))
        let (dir, stub, log, definition) = stubPaths(suiteDirectory)
        try writeTinySuite(stub: stub, log: log, definition: definition)
        let suite = dir + "/suite"
        let r = try shell(
            [script, "--definition", definition, "--suite-dir", suite, "--data", dir, "--no-mpi"],
            environment: ["DCNET_BIN": stub, "STUB_BAD_FLAGS": "b"])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("1 run(s) have flags"), r.output)
        XCTAssertTrue(r.output.contains("  b: --stub-flag is wrong for b"), r.output)
        XCTAssertFalse(r.output.contains("Usage:"), r.output)
        XCTAssertEqual(drainCalls(log), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: suite + "/suite.json"))
    }

    func testRerunSkipsFinishedRunsAndResumesUnfinishedOnes() throws {
        let (script, suiteDirectory) = (try experimentsScript(), TempDir("suite"))
        let (dir, stub, log, definition) = stubPaths(suiteDirectory)
        try writeTinySuite(stub: stub, log: log, definition: definition)
        let suite = dir + "/suite"
        let args = [script, "--definition", definition, "--suite-dir", suite, "--data", dir, "--no-mpi"]
        func calls() -> [String] { drainCalls(log) }

        // 1. b fails: a is done and attacked white-box at the end; the transfer attack onto b waits.
        var r = try shell(args, environment: ["DCNET_BIN": stub, "STUB_FAIL": "b"])
        XCTAssertEqual(r.status, 1, r.output)
        var c = calls()
        XCTAssertEqual(c.filter { $0.hasPrefix("train") }.count, 2, c.joined(separator: "\n"))
        XCTAssertFalse(c.contains { $0.hasPrefix("train") && $0.contains("--resume") })
        XCTAssertEqual(c.filter { $0.hasPrefix("attack") }.count, 1)
        XCTAssertTrue(c.contains { $0.hasPrefix("report") && $0.contains("--features \(suite)") })
        // A partial report after each of the two runs, and the final one.
        XCTAssertEqual(c.filter { $0.hasPrefix("report") }.count, 3, c.joined(separator: "\n"))
        XCTAssertEqual(c.filter { $0.hasPrefix("features --checkpoint \(suite)/a/checkpoints") }.count, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: suite + "/a/DONE"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: suite + "/b/DONE"))

        // 2. Rerun: a is skipped, b resumes, only the missing attack runs.
        r = try shell(args, environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        c = calls()
        let trains = c.filter { $0.hasPrefix("train") }
        XCTAssertEqual(trains.count, 1, c.joined(separator: "\n"))
        XCTAssertTrue(
            trains[0].contains("--checkpoint-dir \(suite)/b/checkpoints") && trains[0].contains("--resume"), trains[0])
        var attacks = c.filter { $0.hasPrefix("attack") }
        XCTAssertEqual(attacks.count, 1)
        // Crafted on a again, evaluated only on b: a's white-box result is already recorded.
        XCTAssertTrue(
            attacks[0].contains("--checkpoint \(suite)/a/checkpoints")
                && attacks[0].contains("--transfer-to \(suite)/b/checkpoints --transfer-name b")
                && !attacks[0].contains("--output "), attacks[0])
        XCTAssertTrue(attacks[0].contains("--epsilon 1,2") && attacks[0].contains("--limit 10"), attacks[0])
        XCTAssertTrue(r.output.contains("a: done (skipped)"), r.output)

        // 3. Everything done: only the report is rewritten.
        r = try shell(args, environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        c = calls()
        XCTAssertEqual(c.count, 1, c.joined(separator: "\n"))
        XCTAssertTrue(c[0].hasPrefix("report --suite \(suite)"), c[0])

        // 4. A fresh suite where both runs train: one job crafts on a and evaluates a (white-box) and b
        // (transfer), recorded in both runs' files.
        try FileManager.default.removeItem(atPath: suite)
        r = try shell(args, environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        c = calls()
        attacks = c.filter { $0.hasPrefix("attack") }
        XCTAssertEqual(attacks.count, 1, c.joined(separator: "\n"))
        XCTAssertTrue(
            attacks[0].contains("--output \(suite)/a/attacks.jsonl")
                && attacks[0].contains("--transfer-output \(suite)/b/attacks.jsonl"), attacks[0])
        for run in ["a", "b"] {
            let done = try String(contentsOfFile: "\(suite)/\(run)/attacks.done", encoding: .utf8)
            XCTAssertEqual(done, "fgsm steps=1 eps=1,2 source=\(run == "a" ? "self" : "a") images=10\n", run)
        }

        // --dry-run runs nothing.
        r = try shell(args + ["--dry-run"], environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(calls().isEmpty)
        XCTAssertTrue(r.output.contains("report --suite"), r.output)
    }

    /// Seeds become <run>-s<K> with --seed K; the select step picks the grid run with the best final
    /// validation accuracy, writes its choice to the suite and the seeded runs train with it (seed 1 is
    /// the chosen grid run itself).
    func testSeedsAndTheLearningRateSelectStep() throws {
        let (script, suiteDirectory) = (try experimentsScript(), TempDir("seeds"))
        let (dir, stub, log, definition) = stubPaths(suiteDirectory)
        // The stub's validation accuracy peaks at lr 0.02, so that is the one to pick.
        try """
        #!/usr/bin/env bash
        [[ " $* " == *" --check-flags "* ]] && exit 0
        echo "$*" >> "\(log)"
        cmd=$1; shift
        lr=0
        while [[ $# -gt 0 ]]; do
            case $1 in --metrics) metrics=$2 ;; --lr) lr=$2 ;; --out) out=$2 ;; esac
            shift
        done
        [[ $cmd == export-model ]] && touch "$out"
        if [[ $cmd == train ]]; then
            mkdir -p "$(dirname "$metrics")"
            accuracy=$([[ $lr == 0.02 ]] && echo 0.6 || echo 0.4)
            echo '{"kind":"epoch","epoch":1,"validation_accuracy":'"$accuracy"'}' >> "$metrics"
        fi
        exit 0
        """.write(toFile: stub, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub)
        try """
        {"name": "seeds",
         "scales": {"default": {"epochs": 1, "train_limit": 0, "eval_limit": 0, "attack_limit": 0, "bim_steps": 1,
                                "validation": 100}},
         "select": [{"name": "lr", "flag": "--lr", "candidates": {"0.01": "g1-s1", "0.02": "g2-s1"}, "reuse": true}],
         "runs": [{"name": "g1", "seeds": [1], "flags": ["--lr", "0.01"]},
                  {"name": "g2", "seeds": [1], "flags": ["--lr", "0.02"]},
                  {"name": "main", "seeds": [1, 2], "select": ["lr"], "epochs": 4, "flags": []}],
         "attacks": {"methods": [], "epsilons": [1]},
         "groups": []}
        """.write(toFile: definition, atomically: true, encoding: .utf8)
        let suite = dir + "/suite"
        let r = try shell(
            [script, "--definition", definition, "--suite-dir", suite, "--data", dir, "--no-mpi"],
            environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        let trains = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter {
            $0.hasPrefix("train")
        }
        // main-s1 is g2-s1 (same flags and seed, "reuse": true): linked, not trained again. main's own
        // "epochs" replaces the scale's; the grid runs keep the scale's 1 epoch.
        XCTAssertTrue(trains.filter { $0.contains("/g") }.allSatisfy { $0.contains("--epochs 1 ") })
        XCTAssertEqual(trains.count, 3, trains.joined(separator: "\n"))
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: suite + "/main-s1"), "g2-s1")
        for seed in [2] {
            XCTAssertTrue(
                trains.contains {
                    $0.contains("/main-s\(seed)/metrics.jsonl") && $0.contains("--seed \(seed) --lr 0.02")
                        && $0.contains("--validation 100") && $0.contains("--epochs 4 ")
                }, trains.joined(separator: "\n"))
        }
        let choice = try String(contentsOfFile: suite + "/select-lr.json", encoding: .utf8)
        XCTAssertTrue(choice.contains(#""chosen": "0.02""#), choice + r.output)
    }

    /// A stub suite whose report (and records) go to `<dir>/report`: the directory (removed when it
    /// is released), the stub, its call log, the suite and report directories, and the command line.
    private func recordsSuite(
        _ name: String
    ) throws -> (directory: TempDir, stub: String, log: String, suite: String, report: String, args: [String]) {
        let (script, suiteDirectory) = (try experimentsScript(), TempDir(name))
        let (dir, stub, log, definition) = stubPaths(suiteDirectory)
        try writeTinySuite(stub: stub, log: log, definition: definition)
        let (suite, reportDir) = (dir + "/suite", dir + "/report")
        let args = [
            script, "--definition", definition, "--suite-dir", suite, "--report-dir", reportDir, "--data", dir,
            "--no-mpi",
        ]
        return (suiteDirectory, stub, log, suite, reportDir, args)
    }

    /// With --report-dir, the records next to the report are the suite's memory: on a new machine (the
    /// suite directory gone, the report's records committed) finished runs, their attacks and feature
    /// geometry come back from them and nothing is repeated; a run recorded without DONE trains again.
    func testReportRecordsRestoreALostSuiteDirectory() throws {
        let (directory, stub, log, suite, reportDir, args) = try recordsSuite("records")
        defer { withExtendedLifetime(directory) {} }
        var r = try shell(args, environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(drainCalls(log).filter { $0.hasPrefix("train") }.count, 2)
        let fm = FileManager.default
        for file in [
            "a/DONE", "a/metrics.jsonl", "a/attacks.jsonl", "a/attacks.done", "a/features.geometry.json",
            "a/model.safetensors", "b/DONE", "b/attacks.done", "b/model.safetensors", "timings.tsv", "suite.json",
        ] {
            XCTAssertTrue(fm.fileExists(atPath: "\(reportDir)/records/\(file)"), file)
        }
        XCTAssertFalse(fm.fileExists(atPath: "\(reportDir)/records/a/checkpoints"))

        // A dry run restores nothing.
        try fm.removeItem(atPath: suite)
        r = try shell(args + ["--dry-run"], environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(fm.fileExists(atPath: suite + "/a"))

        // The suite directory is gone: everything comes back from the records; only reports are written.
        r = try shell(args, environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        var c = drainCalls(log)
        XCTAssertEqual(c.filter { !$0.hasPrefix("report") }, [], c.joined(separator: "\n"))
        XCTAssertTrue(r.output.contains("# a: restored from \(reportDir)/records/a"), r.output)
        XCTAssertEqual(
            try String(contentsOfFile: suite + "/a/attacks.done", encoding: .utf8),
            try String(contentsOfFile: reportDir + "/records/a/attacks.done", encoding: .utf8))
        XCTAssertEqual(
            try String(contentsOfFile: suite + "/timings.tsv", encoding: .utf8).split(separator: "\n").count, 4)

        // b was recorded while unfinished (no DONE): it is not restored and trains again, from the
        // start (no checkpoints came back); a stays restored.
        try fm.removeItem(atPath: suite)
        try fm.removeItem(atPath: reportDir + "/records/b/DONE")
        r = try shell(args, environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        c = drainCalls(log)
        let trains = c.filter { $0.hasPrefix("train") }
        XCTAssertEqual(trains.count, 1, c.joined(separator: "\n"))
        XCTAssertTrue(trains[0].contains("/b/checkpoints") && !trains[0].contains("--resume"), trains[0])
        XCTAssertFalse(c.contains { $0.hasPrefix("features") }, c.joined(separator: "\n"))
    }

    /// A finished run's model and an unfinished run's newest checkpoint travel in the records: on a
    /// new machine the finished run's attacks load its model file, and the unfinished one resumes.
    func testRecordsKeepFinalModelsAndResumeUnfinishedRuns() throws {
        let (directory, stub, log, suite, reportDir, args) = try recordsSuite("records-models")
        defer { withExtendedLifetime(directory) {} }
        // b fails after writing its first checkpoint: unfinished.
        var r = try shell(args, environment: ["DCNET_BIN": stub, "STUB_FAIL": "b"])
        XCTAssertEqual(r.status, 1, r.output)
        var c = drainCalls(log)
        XCTAssertEqual(
            c.filter { $0.hasPrefix("export-model \(suite)/a/checkpoints") }.count, 1, c.joined(separator: "\n"))
        XCTAssertFalse(c.contains { $0.hasPrefix("export-model \(suite)/b/") }, "b is not finished")
        // --records-only writes the records as they stand, training nothing.
        r = try shell(args + ["--records-only"], environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        c = drainCalls(log)
        XCTAssertEqual(c.filter { !$0.hasPrefix("report") }, [], c.joined(separator: "\n"))
        let fm = FileManager.default
        XCTAssertTrue(fm.fileExists(atPath: reportDir + "/records/a/model.safetensors"))
        XCTAssertFalse(fm.fileExists(atPath: reportDir + "/records/a/checkpoints"), "a finished: no checkpoint kept")
        XCTAssertTrue(fm.fileExists(atPath: reportDir + "/records/b/checkpoints/ckpt-00000001.safetensors"))

        // A new machine: a comes back with its model, b with its checkpoint, and b resumes; the
        // transfer attack from a loads a's model file (its checkpoints are gone).
        try fm.removeItem(atPath: suite)
        r = try shell(args, environment: ["DCNET_BIN": stub])
        XCTAssertEqual(r.status, 0, r.output)
        c = drainCalls(log)
        XCTAssertTrue(r.output.contains("# b: restored from \(reportDir)/records/b (unfinished"), r.output)
        let trains = c.filter { $0.hasPrefix("train") }
        XCTAssertEqual(trains.count, 1, c.joined(separator: "\n"))
        XCTAssertTrue(trains[0].contains("/b/checkpoints") && trains[0].contains("--resume"), trains[0])
        let attacks = c.filter { $0.hasPrefix("attack") }
        XCTAssertEqual(attacks.count, 1, c.joined(separator: "\n"))
        XCTAssertTrue(
            attacks[0].contains("--checkpoint \(suite)/a/model.safetensors")
                && attacks[0].contains("--transfer-to \(suite)/b/checkpoints"), attacks[0])
        XCTAssertTrue(fm.fileExists(atPath: reportDir + "/records/b/model.safetensors"))
        XCTAssertFalse(fm.fileExists(atPath: reportDir + "/records/b/checkpoints"), "b finished: checkpoint dropped")
    }
}
