import Kafka

/// Where each assigned partition reads next, and since when nothing came from it: finds
/// partitions that wait past the end of their log.
///
/// A partition waits there after the broker lost its log (the local broker keeps it in
/// memory): its stored offset points into the old log, and the new one is shorter. Apache
/// Kafka answers such a fetch with "offset out of range" and `auto.offset.reset` restarts the
/// partition, but Tansu 0.6 answers nothing, so the partition would wait until the new log
/// grew that far. The topic keeper forgets stored offsets before it recreates a topic, which
/// covers a partition positioned after that; this covers one positioned before (a redo while
/// the broker was away) or never positioned again (no rebalance told it of the new log). The
/// log end compared with is the broker's own, from its latest fetch answer; Tansu's answer
/// to a log-end request counts a batch of messages as one, so that one is not used.
struct PositionWatch {
    /// A partition whose next offset lies past the end of its log.
    struct PastEnd: Equatable {
        var partition: TopicPartition
        var next: Int64
        var logEnd: Int64
    }

    private struct Position {
        var next: Int64
        var since: ContinuousClock.Instant
    }

    /// How long a partition must go without a message before its position is compared with
    /// its log end: long enough for several fetch answers to have refreshed the log end.
    let quietTime: Duration
    private var positions: [TopicPartition: Position] = [:]
    private var nextCheck = ContinuousClock.now

    init(quietTime: Duration) { self.quietTime = quietTime }

    /// Partitions moved to these next offsets (0: the beginning), or that read up to them.
    mutating func moved(_ offsets: [TopicPartition: Int64], at now: ContinuousClock.Instant = .now) {
        for (partition, next) in offsets { positions[partition] = Position(next: max(0, next), since: now) }
    }

    mutating func remove(_ partitions: some Sequence<TopicPartition>) {
        for partition in partitions { positions[partition] = nil }
    }

    /// At most once a second: the partitions quiet for `quietTime` past offset 0, to compare
    /// with their log ends.
    mutating func due(at now: ContinuousClock.Instant = .now) -> [TopicPartition] {
        guard now >= nextCheck else { return [] }
        nextCheck = now + .seconds(1)
        return positions.filter { $0.value.next > 0 && now - $0.value.since >= quietTime }.map(\.key)
    }

    /// Those of `logEnds` (a partition's next offset to be written) that lie before the
    /// partition's next offset.
    func pastEnd(_ logEnds: [TopicPartition: Int64]) -> [PastEnd] {
        logEnds.compactMap { partition, end in
            guard let next = positions[partition]?.next, next > end else { return nil }
            return PastEnd(partition: partition, next: next, logEnd: end)
        }.sorted { ($0.partition.topic, $0.partition.partition) < ($1.partition.topic, $1.partition.partition) }
    }
}
