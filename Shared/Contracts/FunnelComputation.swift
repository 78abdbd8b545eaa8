import Foundation

/// How a funnel's steps must follow each other.
public enum FunnelOrder: String, Sendable, CaseIterable {
    /// Steps in order; other events may come between.
    case sequential
    /// Steps in order with no other event of the person between them.
    case strict
    /// Every step within the window, in any order.
    case any
}

/// The pure core of funnel reports: given each person's events in time order (with the steps
/// each event matches), how far the person got, when, and with which events.
public enum FunnelComputation {
    public struct Event: Sendable, Hashable {
        public var time: Int64
        /// Indexes of the steps this event matches.
        public var steps: Set<Int>
        public var currency: String?
        public var amountMinor: Int64?
        /// The breakdown value of the event (its session's source, medium, … as asked).
        public var segment: String
        /// The caller's index of the event, to find it again in a path.
        public var position: Int
        /// The event's session, for funnels whose steps must all happen in one session.
        public var session: UUID?

        public init(time: Int64, steps: Set<Int>, currency: String? = nil, amountMinor: Int64? = nil, segment: String = "", position: Int = 0,
                    session: UUID? = nil) {
            self.position = position
            self.session = session
            self.time = time
            self.steps = steps
            self.currency = currency
            self.amountMinor = amountMinor
            self.segment = segment
        }
    }

    /// A person's way through the funnel: the event used for each step reached.
    public struct Path: Sendable, Hashable {
        public var events: [Event]

        public init(events: [Event]) { self.events = events }
    }

    /// The steps reached by one person whose events (oldest first) are given. The person enters
    /// with the first event of step 0 at or after `entryFrom`, if it is no later than `entryTo`.
    /// With `withinSession`, every later step must also be in the session of the entering
    /// event (Heap's "all steps within one session"); the window still bounds it.
    public static func path(_ events: [Event], stepCount: Int, order: FunnelOrder, window: Int64, withinSession: Bool = false,
                            entryFrom: Int64, entryTo: Int64) -> Path? {
        switch order {
        case .sequential, .strict:
            guard let start = events.firstIndex(where: { $0.steps.contains(0) && $0.time >= entryFrom }), events[start].time <= entryTo else { return nil }
            var used = [events[start]]
            var index = start
            let deadline = events[start].time + window
            let inSession = { (event: Event) in !withinSession || event.session == events[start].session }
            while used.count < stepCount {
                let step = used.count
                if order == .strict {
                    // The very next event must be the next step.
                    let next = index + 1
                    guard next < events.count, events[next].time <= deadline, inSession(events[next]), events[next].steps.contains(step) else { break }
                    index = next
                } else {
                    // (A person's devices may interleave sessions: the first match in the session counts.)
                    guard let next = events[(index + 1)...].firstIndex(where: { $0.steps.contains(step) && inSession($0) }),
                          events[next].time <= deadline else { break }
                    index = next
                }
                used.append(events[index])
            }
            return Path(events: used)
        case .any:
            // Anchored at the person's first funnel event in the entry range; every step may
            // happen in any order within the window after it (and in its session).
            guard let anchor = events.first(where: { !$0.steps.isEmpty && $0.time >= entryFrom }), anchor.time <= entryTo else { return nil }
            let deadline = anchor.time + window
            var used: [Event] = []
            for step in 0..<stepCount {
                guard let event = events.first(where: {
                    $0.steps.contains(step) && $0.time >= anchor.time && $0.time <= deadline && (!withinSession || $0.session == anchor.session)
                }) else { break }
                used.append(event)
            }
            return used.isEmpty ? nil : Path(events: used)
        }
    }

    public struct StepFigures: Sendable, Hashable {
        public var persons = 0
        public var secondsFromPrevious: [Int64] = []
        public var revenue: [String: Int64] = [:]

        public init() {}
    }

    /// Per step: persons reaching it, the time each took from the previous step, and money.
    public static func figures(_ paths: [Path], stepCount: Int) -> [StepFigures] {
        var steps = Array(repeating: StepFigures(), count: stepCount)
        for path in paths {
            for (index, event) in path.events.enumerated() {
                steps[index].persons += 1
                if index > 0 { steps[index].secondsFromPrevious.append(max(0, event.time - path.events[index - 1].time) / 1000) }
                if let currency = event.currency, let amount = event.amountMinor { steps[index].revenue[currency, default: 0] += amount }
            }
        }
        return steps
    }

    /// The median of whole seconds (the lower middle for an even count); nil when empty.
    public static func median(_ values: [Int64]) -> Int64? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

