import ArgumentParser
import AsyncHTTPClient
import Contracts
import Foundation

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Poll the revenue report until it equals a simulation's expected figures to the cent.",
        discussion: "Compares orders, revenue and refunds per source, medium, campaign and currency. Exits 1 with the differences if they still disagree at the timeout.")

    @Option(help: "Expected figures written by `tributary simulate`.") var expected = "simulation-expected.json"
    @Option(help: "QueryAPI base URL.") var queryAPI = "http://127.0.0.1:" + env("TRIBUTARY_QUERY_PORT", "8081")
    @Option(help: "Admin token or the site's read key (env TRIBUTARY_ADMIN_TOKEN).") var token = env("TRIBUTARY_ADMIN_TOKEN", "")
    @Option(help: "Seconds to wait for the figures to match.") var timeout = 120
    @Flag(help: ArgumentHelp(
        "Compare orders and money per currency summed over sources, not per source (and attribution likewise).",
        discussion: "For a shop whose traffic ran while the embedded broker lost its log: a visit's landing page view sent again after the loss can reach the Sessionizer after its purchase, which keeps the context it was given. Money, orders and refunds must still match exactly."))
    var sourcesMayShift = false

    /// The breakdown key of a row: its source / medium / campaign, or one key for all of them.
    func sourceKey(_ row: JSONValue) -> String {
        sourcesMayShift ? "(any source)" : ["source", "medium", "campaign"].map { row[$0]?.stringValue ?? "" }.joined(separator: " / ")
    }

    func run() async throws {
        let document = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: expected))))
        guard let site = document["site"]?.stringValue, let from = document["from"]?.stringValue, let to = document["to"]?.stringValue,
              let rows = document["revenue_by_source"]?.arrayValue
        else { throw ValidationError("\(expected) is not a simulation's expected figures") }
        // Sums, so that rows collapsed into one key (--sources-may-shift) add up.
        func add(_ table: inout [String: Int], _ key: String, _ value: String?) {
            table[key, default: 0] += Int(value ?? "") ?? 0
        }
        var want: [String: Int] = [:]
        for row in rows {
            let key = sourceKey(row), currency = row["currency"]?.stringValue ?? ""
            add(&want, key + " " + currency + " revenue_minor", row["revenue_minor"]?.scalarText)
            add(&want, key + " orders", row["orders"]?.scalarText)
            add(&want, key + " " + currency + " refunds_minor", row["refunds_minor"]?.scalarText)
        }
        want = want.filter { $0.value != 0 }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let deadline = Date().addingTimeInterval(TimeInterval(timeout))
        var differences: [String] = []
        while true {
            let (status, report) = try await adminCall(client, base: queryAPI, token: token, method: "GET",
                                                       path: "/v1/sites/\(site)/revenue?from=\(from)&to=\(to)&breakdown=source,medium,campaign", body: nil)
            guard status == 200 else { throw ValidationError("revenue report answered \(status): \(report.serialized)") }
            var got: [String: Int] = [:]
            for row in report["rows"]?.arrayValue ?? [] {
                let key = sourceKey(row)
                for money in row["revenue"]?.arrayValue ?? [] {
                    add(&got, key + " " + (money["currency"]?.stringValue ?? "") + " revenue_minor", money["amount_minor"]?.scalarText)
                }
                add(&got, key + " orders", row["orders"]?.scalarText)
                for money in row["refunds"]?.arrayValue ?? [] {
                    add(&got, key + " " + (money["currency"]?.stringValue ?? "") + " refunds_minor", money["amount_minor"]?.scalarText)
                }
            }
            got = got.filter { $0.value != 0 }
            differences = Set(want.keys).union(got.keys).sorted().compactMap { key in
                want[key] == got[key] ? nil : "\(key): expected \(want[key].map(String.init) ?? "nothing"), got \(got[key].map(String.init) ?? "nothing")"
            }
            if differences.isEmpty {
                print("verify: the revenue report matches \(expected) exactly (\(rows.count) source/currency rows\(sourcesMayShift ? ", compared per currency over all sources" : ""))")
                if document["goal"] != nil { try await verifyReports(document, site: site, from: from, to: to, client: client, deadline: deadline) }
                return
            }
            if Date() > deadline { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        print("verify: the revenue report still differs from \(expected) after \(timeout) s:")
        for line in differences.prefix(40) { print("  " + line) }
        throw ExitCode.failure
    }

    /// The goal, funnel, attribution and retention reports against the simulator's history:
    /// creates the "Purchases" goal and the e-commerce funnel (admin token), then polls each
    /// report until it equals the expected figures.
    func verifyReports(_ document: JSONValue, site: String, from: String, to: String, client: HTTPClient, deadline: Date) async throws {
        func call(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
            let (status, answer) = try await adminCall(client, base: queryAPI, token: token, method: method, path: "/v1/sites/\(site)" + path, body: body)
            guard (200..<300).contains(status) else { throw ValidationError("\(method) \(path) answered \(status): \(answer.serialized)") }
            return answer
        }
        let goal = try await call("POST", "/goals", .object(["name": .string("Purchases"), "match": .object(["action": .string("purchase")]), "revenue": .bool(true)]))
        let funnel = try await call("POST", "/funnels/templates/ecommerce")
        let range = "from=\(from)&to=\(to)"
        func money(_ value: JSONValue?) -> String {
            (value?.arrayValue ?? []).map { "\($0["currency"]?.stringValue ?? "") \($0["amount_minor"]?.scalarText ?? "")" }.joined(separator: ", ")
        }
        var checks: [(name: String, expected: String, fetch: () async throws -> String)] = []
        let expectedGoal = document["goal"]!
        // Both as answered at once (from the facts, unless the Aggregator was quicker) and as the
        // rollups answer once the Aggregator, told by tributary.definitions, has backfilled them.
        for rollup in [false, true] {
            func from(_ report: JSONValue) -> String { rollup ? " from the " + (report["computed_from"]?.stringValue ?? "?") : "" }
            checks.append(("goal Purchases", ["visitors", "converters", "conversions"].map { expectedGoal[$0]?.scalarText ?? "" }.joined(separator: " ") + " | " + money(expectedGoal["revenue"]) + (rollup ? " from the rollup" : ""), {
                let report = try await call("GET", "/goals/\(goal["id"]?.stringValue ?? "")/report?\(range)")
                return ["visitors", "converters", "conversions"].map { report[$0]?.scalarText ?? "" }.joined(separator: " ") + " | " + money(report["revenue"])
                    + from(report)
            }))
            checks.append(("e-commerce funnel persons per step", (document["funnel"]?.arrayValue ?? []).compactMap(\.scalarText).joined(separator: " → ") + (rollup ? " from the rollup" : ""), {
                let report = try await call("GET", "/funnels/\(funnel["id"]?.stringValue ?? "")/report?\(range)")
                return (report["steps"]?.arrayValue ?? []).compactMap { $0["persons"]?.scalarText }.joined(separator: " → ")
                    + from(report)
            }))
        }
        for (model, rows) in document["attribution"]?.objectValue ?? [:] {
            func lines(_ rows: [JSONValue]) -> String {
                guard !sourcesMayShift else {
                    // Conversions and each currency's revenue, summed over sources.
                    var conversions = Decimal(0), revenue: [String: Int] = [:]
                    for row in rows {
                        conversions += Decimal(string: row["conversions"]?.scalarText ?? "") ?? 0
                        for amount in row["revenue"]?.arrayValue ?? [] {
                            revenue[amount["currency"]?.stringValue ?? "", default: 0] += Int(amount["amount_minor"]?.scalarText ?? "") ?? 0
                        }
                    }
                    return "(any source) \(conversions) " + revenue.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                }
                return rows.map { row in
                    ["source", "medium", "campaign", "conversions"].map { row[$0]?.scalarText ?? "" }.joined(separator: " / ") + " " + money(row["revenue"])
                }.sorted().joined(separator: "\n")
            }
            checks.append(("attribution \(model)", lines(rows.arrayValue ?? []), {
                lines(try await call("GET", "/attribution?\(range)&model=\(model)&lookback_days=30")["rows"]?.arrayValue ?? [])
            }))
        }
        func cohorts(_ list: [JSONValue]) -> String {
            list.map { cohort in
                "\(cohort["cohort"]?.stringValue ?? ""): \(cohort["persons"]?.scalarText ?? "")"
                    + (cohort["periods"]?.arrayValue ?? []).map { " +\($0["period"]?.scalarText ?? ""): \($0["persons"]?.scalarText ?? "")" }.joined()
            }.joined(separator: "\n")
        }
        // What Stripe confirmed against what tracking saw (the simulated shop's processor share).
        if let expected = document["reconciliation"] {
            let names = ["confirmed", "confirmed_not_in_browser", "confirmed_not_tracked", "tracked_not_confirmed"]
            checks.append(("reconciliation", names.map { "\($0) \(expected[$0]?.scalarText ?? "")" }.joined(separator: ", ") + " | chargebacks " + money(expected["chargebacks"]), {
                let totals = try await call("GET", "/reconciliation?\(range)")["totals"]
                return names.map { "\($0) \(totals?[$0]?.scalarText ?? "")" }.joined(separator: ", ") + " | chargebacks " + money(totals?["chargebacks"])
            }))
        }
        checks.append(("weekly purchase retention", cohorts(document["retention"]?.arrayValue ?? []), {
            cohorts(try await call("GET", "/retention?\(range)&event=purchase&period=week")["cohorts"]?.arrayValue ?? [])
        }))
        for check in checks {
            var actual = ""
            while true {
                actual = try await check.fetch()
                if actual == check.expected { break }
                if Date() > deadline {
                    print("verify: the \(check.name) report differs from \(expected):\n  expected: \(check.expected.replacingOccurrences(of: "\n", with: "\n            "))\n  actual:   \(actual.replacingOccurrences(of: "\n", with: "\n            "))")
                    throw ExitCode.failure
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            print("verify: \(check.name) matches (\(check.expected.split(separator: "\n").first ?? ""))")
        }
    }
}
