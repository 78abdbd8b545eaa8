import ArgumentParser
import AsyncHTTPClient
import Contracts
import Foundation

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Poll the revenue report until it equals a simulation's expected figures to the cent.",
        discussion: "Compares orders and revenue per source, medium, campaign and currency. Exits 1 with the differences if they still disagree at the timeout.")

    @Option(help: "Expected figures written by `tributary simulate`.") var expected = "simulation-expected.json"
    @Option(help: "QueryAPI base URL.") var queryAPI = "http://127.0.0.1:" + env("TRIBUTARY_QUERY_PORT", "8081")
    @Option(help: "Admin token or the site's read key (env TRIBUTARY_ADMIN_TOKEN).") var token = env("TRIBUTARY_ADMIN_TOKEN", "")
    @Option(help: "Seconds to wait for the figures to match.") var timeout = 120

    func run() async throws {
        let document = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: expected))))
        guard let site = document["site"]?.stringValue, let from = document["from"]?.stringValue, let to = document["to"]?.stringValue,
              let rows = document["revenue_by_source"]?.arrayValue
        else { throw ValidationError("\(expected) is not a simulation's expected figures") }
        var want: [String: String] = [:]
        for row in rows {
            let key = ["source", "medium", "campaign"].map { row[$0]?.stringValue ?? "" }.joined(separator: " / ")
            want[key + " " + (row["currency"]?.stringValue ?? "")] = "revenue_minor=\(row["revenue_minor"]?.scalarText ?? "")"
            let ordersKey = key + " orders"
            want[ordersKey] = String((Int(want[ordersKey] ?? "0") ?? 0) + (Int(row["orders"]?.scalarText ?? "0") ?? 0))
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let deadline = Date().addingTimeInterval(TimeInterval(timeout))
        var differences: [String] = []
        while true {
            let (status, report) = try await adminCall(client, base: queryAPI, token: token, method: "GET",
                                                       path: "/v1/sites/\(site)/revenue?from=\(from)&to=\(to)&breakdown=source,medium,campaign", body: nil)
            guard status == 200 else { throw ValidationError("revenue report answered \(status): \(report.serialized)") }
            var got: [String: String] = [:]
            for row in report["rows"]?.arrayValue ?? [] {
                let key = ["source", "medium", "campaign"].map { row[$0]?.stringValue ?? "" }.joined(separator: " / ")
                for money in row["revenue"]?.arrayValue ?? [] {
                    got[key + " " + (money["currency"]?.stringValue ?? "")] = "revenue_minor=\(money["amount_minor"]?.scalarText ?? "")"
                }
                got[key + " orders"] = row["orders"]?.scalarText
            }
            differences = Set(want.keys).union(got.keys).sorted().compactMap { key in
                want[key] == got[key] ? nil : "\(key): expected \(want[key] ?? "nothing"), got \(got[key] ?? "nothing")"
            }
            if differences.isEmpty {
                print("verify: the revenue report matches \(expected) exactly (\(rows.count) source/currency rows)")
                return
            }
            if Date() > deadline { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        print("verify: the revenue report still differs from \(expected) after \(timeout) s:")
        for line in differences.prefix(40) { print("  " + line) }
        throw ExitCode.failure
    }
}
