import Synchronization

/// What a producer delivered to one topic and its consumers have not stored results for yet,
/// kept in memory so it can be sent again if the broker loses the log.
///
/// The embedded broker keeps its log in memory: killed, it comes back empty, and an event
/// acknowledged with `202` but not yet processed would be gone. The producer that delivered
/// it still knows it: delivery reports land here (message bytes, partition, offset), the
/// stream runtime's `LogReplay` drops what the consumers stored results for, and sends the
/// rest again when the topic's log was replaced. Consumers deduplicate by event id, so a
/// message sent twice counts once.
///
/// Entries carry the generation of the topic's log they were delivered to, as far as this
/// process knew it (`LogReplay` learns replacements from Postgres). Past `capacityBytes` the
/// oldest entries are dropped and counted: consumers that lag that far leave what was
/// acknowledged since exposed to a broker crash, and the loss report says so.
public final class ReplayBuffer: Sendable {
    public let topic: String
    public let capacityBytes: Int

    /// 64 MiB: seconds of a busy Collector's traffic, far more than consumers lag when healthy.
    public static let defaultCapacityBytes = 64 << 20

    struct Entry {
        var offset: Int64
        /// Key bytes then value bytes; `keyLength` -1 for a message without a key.
        var bytes: [UInt8]
        var keyLength: Int32
    }

    /// One partition's entries in offset order (delivery reports of an idempotent producer
    /// come in order per partition), consumed from `head`.
    struct Queue {
        var entries: [Entry] = []
        var head = 0

        var isEmpty: Bool { head == entries.count }

        mutating func popFirst() -> Entry? {
            guard head < entries.count else { return nil }
            defer { head += 1; compact() }
            return entries[head]
        }

        mutating func compact() {
            if head == entries.count { entries.removeAll(keepingCapacity: true); head = 0 }
            else if head > 4096 && head * 2 > entries.count { entries.removeFirst(head); head = 0 }
        }
    }

    struct State {
        var generation: Int64 = 0
        var queues: [Int32: Queue] = [:]
        /// One past the highest offset delivered per partition in `generation`.
        var deliveredEnds: [Int32: Int64] = [:]
        var bytes = 0
        var dropped = 0
    }

    let state = Mutex(State())

    public init(topic: String, capacityBytes: Int = ReplayBuffer.defaultCapacityBytes) {
        self.topic = topic
        self.capacityBytes = capacityBytes
    }

    /// Called from the delivery-report thread for each message delivered to `topic`.
    func retain(partition: Int32, offset: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer) {
        var bytes = [UInt8]()
        bytes.reserveCapacity((key?.count ?? 0) + value.count)
        if let key { bytes.append(contentsOf: key) }
        bytes.append(contentsOf: value)
        let entry = Entry(offset: offset, bytes: bytes, keyLength: key.map { Int32($0.count) } ?? -1)
        state.withLock { state in
            state.deliveredEnds[partition] = max(state.deliveredEnds[partition] ?? 0, offset + 1)
            state.queues[partition, default: Queue()].entries.append(entry)
            state.bytes += entry.bytes.count
            // Over capacity: the oldest entries of this partition go first.
            while state.bytes > capacityBytes, let oldest = state.queues[partition]?.popFirst() {
                state.bytes -= oldest.bytes.count
                state.dropped += 1
            }
        }
    }

    /// The generation of the log this buffer's entries were delivered to.
    public var generation: Int64 { state.withLock { $0.generation } }

    /// Takes `generation` as the one this buffer's entries so far were delivered to (at start).
    public func adopt(generation: Int64) {
        state.withLock { $0.generation = generation }
    }

    /// Drops the entries of `generation` below the consumers' stored offsets.
    public func prune(generation: Int64, processed: [Int32: Int64]) {
        state.withLock { state in
            guard state.generation == generation else { return }
            for (partition, next) in processed {
                while let first = state.queues[partition].flatMap({ $0.isEmpty ? nil : $0.entries[$0.head] }), first.offset < next {
                    _ = state.queues[partition]?.popFirst()
                    state.bytes -= first.bytes.count
                }
            }
        }
    }

    /// The log was replaced by `generation`: returns what the old log held at or past
    /// `processed` (the consumers' positions in it) as messages to send again, and starts
    /// afresh for the new log. Also returns how many entries had been dropped for capacity.
    public func replace(by generation: Int64, processed: [Int32: Int64]) -> (messages: [KafkaOutgoingMessage], dropped: Int) {
        state.withLock { state in
            var messages: [KafkaOutgoingMessage] = []
            for partition in state.queues.keys.sorted() {
                let queue = state.queues[partition]!
                for entry in queue.entries[queue.head...] where entry.offset >= processed[partition] ?? 0 {
                    let keyLength = Int(entry.keyLength)
                    let key = keyLength < 0 ? nil : Array(entry.bytes[..<keyLength])
                    messages.append(KafkaOutgoingMessage(topic: topic, key: key, value: Array(entry.bytes[max(0, keyLength)...])))
                }
            }
            let dropped = state.dropped
            state = State()
            state.generation = generation
            return (messages, dropped)
        }
    }

    /// One past the highest offset delivered per partition of the current generation.
    public var deliveredEnds: (generation: Int64, ends: [Int32: Int64]) {
        state.withLock { ($0.generation, $0.deliveredEnds) }
    }

    /// Bytes held and entries dropped for capacity since the current generation began.
    public var usage: (bytes: Int, dropped: Int) {
        state.withLock { ($0.bytes, $0.dropped) }
    }
}
