import Kafka
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Storage

/// Sends again what a producer delivered to a log the broker lost, unless its consumers had
/// stored results for it: the embedded broker keeps its log in memory, and without this an
/// event acknowledged with `202` but not yet processed would die with it.
///
/// Every second: reads the topic's current generation and its consumers' stored offsets (one
/// statement, see `KafkaLogBook.position`); drops from the producer's `ReplayBuffer` what
/// they stored results for; records how far this process delivered (the loss report's log
/// end). When the generation moved on (a topic keeper recreated the topic), takes from the
/// buffer what the lost log held past the positions the keeper forgot and sends it to the new
/// log until the broker acknowledges it. Consumers deduplicate by event id, so a message that
/// was in fact processed and is sent again counts once.
///
/// Metrics: `tributary_kafka_republished_total{topic}`, `tributary_kafka_replay_buffer_bytes{topic}`,
/// `tributary_kafka_replay_dropped_total{topic}` (entries dropped because the buffer was full).
public struct LogReplay: Service {
    let producer: KafkaProducer
    let buffer: ReplayBuffer
    let consumers: OffsetStore
    let book: KafkaLogBook
    let logger: Logger
    let interval: Duration

    public init(producer: KafkaProducer, buffer: ReplayBuffer, consumers: OffsetStore, book: KafkaLogBook, logger: Logger, interval: Duration = .seconds(1)) {
        self.producer = producer
        self.buffer = buffer
        self.consumers = consumers
        self.book = book
        self.logger = logger
        self.interval = interval
    }

    /// Messages of a lost generation taken from the buffer and not yet acknowledged again.
    struct Pending {
        var generation: Int64
        var messages: [KafkaOutgoingMessage]
    }

    public func run() async throws {
        var topicLogger = logger
        topicLogger[metadataKey: "topic"] = "\(buffer.topic)"
        let bytes = Gauge(label: "tributary_kafka_replay_buffer_bytes", dimensions: [("topic", buffer.topic)])
        let dropped = Counter(label: "tributary_kafka_replay_dropped_total", dimensions: [("topic", buffer.topic)])
        // What this process delivers before the first round went to the current log.
        if let (generation, _) = try? await book.position(topic: buffer.topic, consumers: consumers) {
            buffer.adopt(generation: generation)
        }
        try? await cancelWhenGracefulShutdown { [topicLogger] in
            var pending: [Pending] = []
            var droppedReported = 0
            var failing = false
            while !Task.isCancelled {
                do {
                    try await round(&pending, logger: topicLogger)
                    if failing { topicLogger.info("replay of \(buffer.topic) works again") }
                    failing = false
                } catch {
                    if !failing { topicLogger.warning("replay of \(buffer.topic) failed (retried every \(interval)): \(String(describing: error))") }
                    failing = true
                }
                let usage = buffer.usage
                bytes.record(usage.bytes)
                if usage.dropped > droppedReported {
                    if droppedReported == 0 {
                        topicLogger.warning("replay buffer of \(buffer.topic) is full (\(buffer.capacityBytes >> 20) MiB): its consumers lag, and what this process delivers now would not survive a broker crash until they catch up")
                    }
                    dropped.increment(by: usage.dropped - droppedReported)
                }
                droppedReported = usage.dropped
                try await Task.sleep(for: interval)
            }
        }
        // A last record of how far this process delivered, for a loss after it stopped.
        let (generation, ends) = buffer.deliveredEnds
        try? await book.recordDelivered(topic: buffer.topic, generation: generation, ends: ends)
    }

    func round(_ pending: inout [Pending], logger: Logger) async throws {
        let topic = buffer.topic
        let (generation, processed) = try await book.position(topic: topic, consumers: consumers)
        let held = buffer.generation
        if generation > held {
            // The positions consumers had reached in the lost log, as the keeper forgot them.
            let lostPositions = try await book.processed(topic: topic, generation: held)
            let (messages, dropped) = buffer.replace(by: generation, processed: lostPositions)
            pending.append(Pending(generation: held, messages: messages))
            logger.warning(
                "\(topic): the broker lost generation \(held) of its log; this process sends again the \(messages.count) messages it had delivered there that were not yet processed\(dropped > 0 ? " (\(dropped) more had been dropped from its full replay buffer and are lost)" : "")",
                metadata: ["generation": "\(held)", "republishing": "\(messages.count)", "dropped": "\(dropped)"])
        } else {
            buffer.prune(generation: generation, processed: processed)
        }
        while let next = pending.first {
            try await producer.send(next.messages)
            try await book.addRepublished(topic: topic, generation: next.generation, count: next.messages.count)
            Counter(label: "tributary_kafka_republished_total", dimensions: [("topic", topic)]).increment(by: next.messages.count)
            logger.info("\(topic): sent again \(next.messages.count) messages of lost generation \(next.generation)")
            pending.removeFirst()
        }
        let (current, ends) = buffer.deliveredEnds
        try await book.recordDelivered(topic: topic, generation: current, ends: ends)
    }
}
