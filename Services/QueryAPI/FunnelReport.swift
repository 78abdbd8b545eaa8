import Contracts
import Foundation
import Logging
import PostgresNIO
import Storage

/// `GET /v1/sites/{site}/funnels/{id}/report`, counted per stitched person. A person enters
/// on a day in the range; later steps may fall up to the window after it. Read from the
/// funnel's rollup (`analytics.funnel_entries`: each person's path from each day they entered)
/// once the Aggregator has backfilled it; until then, and for strict funnels, computed from
/// the facts by the same rule, so a new funnel covers the past at once.
struct FunnelReport {
    let postgres: PostgresClient
    let logger: Logger

    /// What the answer shows of one step.
    struct StepSummary: Equatable {
        var persons: Int64 = 0
        var medianSecondsFromPrevious: Int64?
        var revenue: [String: Int64] = [:]
    }

    func run(site: String, timezone: String, funnel: Funnel, query: ReportQuery, fromRollup: Bool? = nil) async throws -> JSONValue {
        let segmentDimension = query.breakdown.first { [.source, .medium, .campaign, .channel].contains($0) }
        var fromRollup = fromRollup
        if fromRollup == nil { fromRollup = try await RollupState(postgres: postgres, logger: logger).isReady(.funnel, id: funnel.id) }
        let readsRollup = fromRollup == true && funnel.order != .strict
        let (total, segments) = readsRollup
            ? try await summariesFromRollup(site: site, funnel: funnel, query: query, segment: segmentDimension)
            : try await summariesFromFacts(site: site, timezone: timezone, funnel: funnel, query: query, segment: segmentDimension)
        var object: [String: JSONValue] = [
            "funnel": funnel.json, "site": .string(site), "from": .string(query.from), "to": .string(query.to),
            "steps": stepsJSON(total, funnel: funnel), "rows": .array([]), "computed_from": .string(readsRollup ? "rollup" : "facts"),
        ]
        if let segmentDimension {
            object["breakdown"] = .string(segmentDimension.rawValue)
            object["rows"] = .array(segments.sorted { a, b in
                let (first, second) = (a.value.first?.persons ?? 0, b.value.first?.persons ?? 0)
                return first != second ? first > second : a.key < b.key
            }.map { segment, steps in
                .object([segmentDimension.rawValue: .string(segment), "steps": stepsJSON(steps, funnel: funnel)])
            })
        }
        return .object(object)
    }

    /// From the rollup: a person counts once, on their first entry day in the range (the row
    /// whose previous entry day lies before it). Persons per step from `funnel_entry_totals`
    /// (a few thousand rows, whatever the number of persons; per source `funnel_entry_counts`);
    /// medians and money from the entries that went past the first step or carry money, read
    /// from their index alone.
    func summariesFromRollup(site: String, funnel: Funnel, query: ReportQuery, segment: ReportQuery.Dimension?) async throws
        -> (total: [StepSummary], segments: [String: [StepSummary]]) {
        let segmentSQL = segment?.sql ?? "''"
        let dates = query.range(site: site)
        // A partial index finds the entries that went past the first step or carry money.
        let days: SQLFragment = """
            site = \(dates.site) AND funnel_id = \(funnel.id) AND entry_day BETWEEN \(dates.from)::date AND \(dates.to)::date
            """
        let range: SQLFragment = "\(days) AND (previous_entry_day IS NULL OR previous_entry_day < \(dates.from)::date)"
        let counts: SQLFragment = segment == nil ? "funnel_entry_totals" : "funnel_entry_counts"
        let statement: SQLFragment = """
            WITH detail AS MATERIALIZED (
                SELECT steps_reached, seconds_from_previous, currencies, amounts_minor, \(segmentSQL) AS segment
                FROM analytics.funnel_entries WHERE \(range) AND (steps_reached >= 2 OR amounts_minor IS NOT NULL)
            )
            SELECT 'reached', \(segmentSQL), steps_reached::int8, sum(persons)::int8, NULL::int8, NULL::text
            FROM analytics.\(counts)
            WHERE \(days) AND previous_entry_day < \(dates.from)::date GROUP BY 2, steps_reached
            UNION ALL
            SELECT CASE WHEN grouping(segment) = 1 THEN 'total median' ELSE 'median' END, segment, k::int8, count(*)::int8,
                   floor(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds_from_previous[k + 1]))::int8, NULL
            FROM detail, generate_series(1, steps_reached - 1) AS k WHERE steps_reached >= 2
            GROUP BY GROUPING SETS ((segment, k), (k))
            UNION ALL
            SELECT 'revenue', segment, k::int8, 0, sum(amounts_minor[k + 1])::int8, currencies[k + 1]
            FROM detail, generate_series(0, steps_reached - 1) AS k
            WHERE amounts_minor IS NOT NULL AND amounts_minor[k + 1] IS NOT NULL
            GROUP BY segment, k, currencies[k + 1]
            """
        let stepCount = funnel.steps.count
        var segments: [String: [StepSummary]] = [:]
        var total = Array(repeating: StepSummary(), count: stepCount)
        func steps(_ segment: String) -> [StepSummary] { segments[segment] ?? Array(repeating: StepSummary(), count: stepCount) }
        for try await (kind, segment, step, count, value, currency) in try await postgres.query(statement.query, logger: logger)
            .decode((String, String?, Int64, Int64, Int64?, String?).self) {
            let step = Int(step)
            switch kind {
            case "reached" where step > 0:
                // Reaching n steps counts for each of the first n.
                var summary = steps(segment ?? "")
                for index in 0..<min(step, stepCount) {
                    summary[index].persons += count
                    total[index].persons += count
                }
                segments[segment ?? ""] = summary
            case "median" where step < stepCount:
                var summary = steps(segment ?? "")
                summary[step].medianSecondsFromPrevious = value
                segments[segment ?? ""] = summary
            case "total median" where step < stepCount:
                total[step].medianSecondsFromPrevious = value
            case "revenue" where step < stepCount:
                guard let currency, let value else { continue }
                var summary = steps(segment ?? "")
                summary[step].revenue[currency, default: 0] += value
                total[step].revenue[currency, default: 0] += value
                segments[segment ?? ""] = summary
            default:
                continue
            }
        }
        return (total, segments)
    }

    /// From the facts: every matching event of the range (and the window after it), each
    /// person's path computed here.
    func summariesFromFacts(site: String, timezone: String, funnel: Funnel, query: ReportQuery, segment segmentDimension: ReportQuery.Dimension?) async throws
        -> (total: [StepSummary], segments: [String: [StepSummary]]) {
        let conditions = funnel.steps.map(\.match.condition)
        let flags = conditions.enumerated().map { step, condition in "CASE WHEN \(condition) THEN \(step) END" as SQLFragment }.joined()
        // Strict funnels need every event of the person (nothing may come between steps).
        let onlySteps: SQLFragment? = funnel.order == .strict ? nil : "AND (\(conditions.joined(separator: " OR ")))"
        let segment: SQLFragment = segmentDimension.map { "e.\($0.sql)" } ?? "''"
        let key = EventCopySQL.key()
        let statement: SQLFragment = """
            SELECT DISTINCT ON (\(key))
                   e.person_id, (extract(epoch FROM e.occurred_at) * 1000)::int8, array_remove(ARRAY[\(flags)]::int8[], NULL),
                   e.currency, e.amount_minor, \(segment), \(key), e.session_id
            FROM analytics.events e
            WHERE e.site = \(site) AND e.day BETWEEN \(query.from)::date AND \(query.to)::date + make_interval(secs => \(funnel.windowSeconds)::int8)
              \(onlySteps)
            ORDER BY \(key), \(EventCopySQL.countedFirst())
            """
        var people: [String: [(event: FunnelComputation.Event, key: String)]] = [:]
        for try await (person, time, steps, currency, amount, segment, key, session) in try await postgres.query(statement.query, logger: logger)
            .decode((String, Int64, [Int], String?, Int64?, String, String, UUID).self) {
            let event = FunnelComputation.Event(time: time, steps: Set(steps), currency: currency, amountMinor: amount, segment: segment, session: session)
            people[person, default: []].append((event, key))
        }
        let (entryFrom, entryTo) = Self.entryRange(from: query.from, to: query.to, timezone: timezone)
        var paths: [FunnelComputation.Path] = []
        for (_, events) in people {
            // Simultaneous events in key order, as the rollup reads them.
            let ordered = events.sorted { ($0.event.time, $0.key) < ($1.event.time, $1.key) }.map(\.event)
            if let path = FunnelComputation.path(ordered, stepCount: funnel.steps.count, order: funnel.order, window: funnel.windowSeconds * 1000,
                                                 withinSession: funnel.withinSession, entryFrom: entryFrom, entryTo: entryTo) {
                paths.append(path)
            }
        }
        func summaries(_ paths: [FunnelComputation.Path]) -> [StepSummary] {
            FunnelComputation.figures(paths, stepCount: funnel.steps.count).map {
                StepSummary(persons: Int64($0.persons), medianSecondsFromPrevious: FunnelComputation.median($0.secondsFromPrevious), revenue: $0.revenue)
            }
        }
        let segments = segmentDimension == nil ? [:] : Dictionary(grouping: paths) { $0.events[0].segment }.mapValues(summaries)
        return (summaries(paths), segments)
    }

    func stepsJSON(_ figures: [StepSummary], funnel: Funnel) -> JSONValue {
        let start = figures.first?.persons ?? 0
        return .array(figures.enumerated().map { index, step in
            let previous = index == 0 ? step.persons : figures[index - 1].persons
            var revenue = CurrencyAmounts()
            for (currency, amount) in step.revenue { revenue.add(currency, amount) }
            return .object([
                "name": .string(funnel.steps[index].name),
                "persons": .number(String(step.persons)),
                "conversion_from_previous": .number(OverviewReport.rate(step.persons, of: previous)),
                "conversion_from_start": .number(OverviewReport.rate(step.persons, of: start)),
                "dropped": .number(String(previous - step.persons)),
                "median_seconds_from_previous": step.medianSecondsFromPrevious.map { .number(String($0)) } ?? .null,
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
