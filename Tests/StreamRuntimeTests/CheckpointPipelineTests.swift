import Foundation
@testable import StreamRuntime
import Synchronization
import Testing

/// The order and failure rules of pipelined checkpoints: each commits after the one before it,
/// and none commits after one that failed.
@Suite("Checkpoint pipeline")
struct CheckpointPipelineTests {
    struct Failure: Error {}

    final class Log: Sendable {
        private let entries = Mutex<[Int]>([])
        func append(_ entry: Int) { entries.withLock { $0.append(entry) } }
        var all: [Int] { entries.withLock { $0 } }
    }

    @Test func checkpointsCommitInOrderEvenWhenAnEarlierOneIsSlower() async {
        let pipeline = CheckpointPipeline()
        let log = Log()
        for batch in 0..<6 {
            await pipeline.append {
                // Earlier checkpoints take longer: order must come from the pipeline.
                try await Task.sleep(for: .milliseconds(12 - 2 * batch))
                log.append(batch)
            }
        }
        await pipeline.drain()
        #expect(log.all == Array(0..<6))
        #expect(!pipeline.hasFailed)
        pipeline.waitUntilIdle()
    }

    @Test func nothingCommitsAfterAFailedCheckpointUntilReset() async {
        let pipeline = CheckpointPipeline()
        let log = Log()
        await pipeline.append { log.append(0) }
        await pipeline.append {
            try await Task.sleep(for: .milliseconds(5))
            throw Failure()
        }
        await pipeline.append { log.append(2) }
        await pipeline.append { log.append(3) }
        await pipeline.drain()
        #expect(log.all == [0])
        #expect(pipeline.hasFailed)
        pipeline.reset()
        await pipeline.append { log.append(4) }
        await pipeline.drain()
        #expect(log.all == [0, 4])
        #expect(!pipeline.hasFailed)
    }

    @Test func aCheckpointQueuedAfterADrainThatSawAFailureDoesNotCommit() async {
        let pipeline = CheckpointPipeline()
        let log = Log()
        await pipeline.append { throw Failure() }
        await pipeline.drain()
        // Nothing is in flight any more, but the work of the failed batch is still lost.
        await pipeline.append { log.append(1) }
        await pipeline.drain()
        #expect(log.all.isEmpty)
        #expect(pipeline.hasFailed)
    }

    final class InFlight: Sendable {
        private let counts = Mutex((running: 0, most: 0))
        func started() { counts.withLock { $0.running += 1 } }
        func finished() { counts.withLock { $0.running -= 1 } }
        func observe() { counts.withLock { $0.most = max($0.most, $0.running) } }
        var most: Int { counts.withLock { $0.most } }
    }

    @Test func atMostDepthCheckpointsAreInFlightAfterAppend() async {
        let pipeline = CheckpointPipeline()
        let inFlight = InFlight()
        for _ in 0..<8 {
            inFlight.started()
            await pipeline.append {
                try await Task.sleep(for: .milliseconds(2))
                inFlight.finished()
            }
            inFlight.observe()
        }
        await pipeline.drain()
        #expect(inFlight.most <= CheckpointPipeline.depth)
    }
}
