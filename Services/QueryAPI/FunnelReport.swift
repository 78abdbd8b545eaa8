import Contracts
import Foundation
import Logging
import PostgresNIO

/// The pure core of funnel reports: given each person's events in time order (with the steps
/// each event matches), how far the person got, when, and with which events.
enum FunnelComputation {
    struct Event: Sendable, Hashable {
        var time: Int64
        /// Indexes of the steps this event matches.
        var steps: Set<Int>
        var currency: String?
        var amountMinor: Int64?
        /// The breakdown value of the event (its session's source, medium, … as asked).
        var segment: String
    }

    /// A person's way through the funnel: the event used for each step reached.
    struct Path: Sendable, Hashable {
        var events: [Event]
    }

    /// The steps reached by one person whose events (oldest first) are given. The person enters
    /// with the first event of step 0 at or after `entryFrom`, if it is no later than `entryTo`.
    static func path(_ events: [Event], stepCount: Int, order: Funnel.Order, window: Int64, entryFrom: Int64, entryTo: Int64) -> Path? {
        switch order {
        case .sequential, .strict:
            guard let start = events.firstIndex(where: { $0.steps.contains(0) && $0.time >= entryFrom }), events[start].time <= entryTo else { return nil }
            var used = [events[start]]
            var index = start
            let deadline = events[start].time + window
            while used.count < stepCount {
                let step = used.count
                if order == .strict {
                    // The very next event must be the next step.
                    let next = index + 1
                    guard next < events.count, events[next].time <= deadline, events[next].steps.contains(step) else { break }
                    index = next
                } else {
                    guard let next = events[(index + 1)...].firstIndex(where: { $0.steps.contains(step) }), events[next].time <= deadline else { break }
                    index = next
                }
                used.append(events[index])
            }
            return Path(events: used)
        case .any:
            // Anchored at the person's first funnel event in the entry range; every step may
            // happen in any order within the window after it.
            guard let anchor = events.first(where: { !$0.steps.isEmpty && $0.time >= entryFrom }), anchor.time <= entryTo else { return nil }
            let deadline = anchor.time + window
            var used: [Event] = []
            for step in 0..<stepCount {
                guard let event = events.first(where: { $0.steps.contains(step) && $0.time >= anchor.time && $0.time <= deadline }) else { break }
                used.append(event)
            }
            return used.isEmpty ? nil : Path(events: used)
        }
    }

    struct StepFigures: Sendable, Hashable {
        var persons = 0
        var secondsFromPrevious: [Int64] = []
        var revenue: [String: Int64] = [:]
    }

    /// Per step: persons reaching it, the time each took from the previous step, and money.
    static func figures(_ paths: [Path], stepCount: Int) -> [StepFigures] {
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
    static func median(_ values: [Int64]) -> Int64? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// `GET /v1/sites/{site}/funnels/{id}/report`: counted per stitched person from the facts, so
/// a new funnel covers the past at once. A person enters on a day in the range; later steps
/// may fall up to the window after it.
struct FunnelReport {
    let postgres: PostgresClient
    let logger: Logger

    func run(site: String, timezone: String, funnel: Funnel, query: ReportQuery) async throws -> JSONValue {
        let segmentDimension = query.breakdown.first { [.source, .medium, .campaign, .channel].contains($0) }
        var binds = [site, query.from, query.to, String(funnel.windowSeconds)]
        let conditions = funnel.steps.map { $0.match.condition(binds: &binds) }
        let flags = conditions.enumerated().map { "CASE WHEN \($1) THEN \($0) END" }.joined(separator: ", ")
        // Strict funnels need every event of the person (nothing may come between steps).
        let onlySteps = funnel.order == .strict ? "" : "AND (" + conditions.joined(separator: " OR ") + ")"
        let sql = """
            SELECT DISTINCT ON (coalesce(e.event_id, e.event_uuid::text))
                   e.person_id, (extract(epoch FROM e.occurred_at) * 1000)::int8, array_remove(ARRAY[\(flags)]::int8[], NULL),
                   e.currency, e.amount_minor, \(segmentDimension.map { "e." + $0.rawValue } ?? "''")
            FROM analytics.events e
            WHERE e.site = $1 AND e.day BETWEEN $2::date AND $3::date + make_interval(secs => $4::int8)
              \(onlySteps)
            ORDER BY coalesce(e.event_id, e.event_uuid::text), (e.origin = 'server') DESC, e.event_uuid
            """
        var postgresBinds = PostgresBindings()
        for value in binds { postgresBinds.append(value) }
        var people: [String: [FunnelComputation.Event]] = [:]
        for try await (person, time, steps, currency, amount, segment) in try await postgres.query(PostgresQuery(unsafeSQL: sql, binds: postgresBinds), logger: logger)
            .decode((String, Int64, [Int], String?, Int64?, String).self) {
            people[person, default: []].append(FunnelComputation.Event(time: time, steps: Set(steps), currency: currency, amountMinor: amount, segment: segment))
        }
        let (entryFrom, entryTo) = Self.entryRange(from: query.from, to: query.to, timezone: timezone)
        var paths: [FunnelComputation.Path] = []
        for (_, events) in people {
            let ordered = events.sorted { $0.time < $1.time }
            if let path = FunnelComputation.path(ordered, stepCount: funnel.steps.count, order: funnel.order, window: funnel.windowSeconds * 1000,
                                                 entryFrom: entryFrom, entryTo: entryTo) {
                paths.append(path)
            }
        }
        var object: [String: JSONValue] = [
            "funnel": funnel.json, "site": .string(site), "from": .string(query.from), "to": .string(query.to),
            "steps": stepsJSON(FunnelComputation.figures(paths, stepCount: funnel.steps.count), funnel: funnel),
        ]
        if let segmentDimension {
            let bySegment = Dictionary(grouping: paths) { $0.events[0].segment }
            object["breakdown"] = .string(segmentDimension.rawValue)
            object["rows"] = .array(bySegment.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }.map { segment, paths in
                .object([segmentDimension.rawValue: .string(segment), "steps": stepsJSON(FunnelComputation.figures(paths, stepCount: funnel.steps.count), funnel: funnel)])
            })
        } else {
            object["rows"] = .array([])
        }
        return .object(object)
    }

    func stepsJSON(_ figures: [FunnelComputation.StepFigures], funnel: Funnel) -> JSONValue {
        let start = figures.first?.persons ?? 0
        return .array(figures.enumerated().map { index, step in
            let previous = index == 0 ? step.persons : figures[index - 1].persons
            var revenue = CurrencyAmounts()
            for (currency, amount) in step.revenue { revenue.add(currency, amount) }
            return .object([
                "name": .string(funnel.steps[index].name),
                "persons": .number(String(step.persons)),
                "conversion_from_previous": .number(OverviewReport.rate(Int64(step.persons), of: Int64(previous))),
                "conversion_from_start": .number(OverviewReport.rate(Int64(step.persons), of: Int64(start))),
                "dropped": .number(String(previous - step.persons)),
                "median_seconds_from_previous": FunnelComputation.median(step.secondsFromPrevious).map { .number(String($0)) } ?? .null,
                "revenue": revenue.json,
            ])
        })
    }

    /// The range's first and last instants in the site's time zone, in Unix milliseconds.
    static func entryRange(from: String, to: String, timezone: String) -> (Int64, Int64) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timezone) ?? .gmt
        func start(of date: String) -> Int64 {
            let parts = date.split(separator: "-").compactMap { Int($0) }
            guard parts.count == 3, let day = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])) else { return 0 }
            return Int64(day.timeIntervalSince1970 * 1000)
        }
        let end = start(of: to)
        return (start(of: from), end + 86_400_000 - 1)
    }
}
