import Foundation
import Hummingbird
import NIOCore

/// The browser tracker, served by the Collector at `GET /t.js`:
/// `<script src="https://collector.example/t.js" data-site="shop-1" defer></script>`.
///
/// It posts to `/v1/events` on the script's own origin (`data-endpoint="https://host[/prefix]"`
/// overrides it), sends a pageview on load and on every history change that alters the URL,
/// and exposes `tributary.track(name, props)` (`value`, `currency`, `event_id`, `order_id`,
/// `items` and `order` become native fields, the rest `properties`), `tributary.setVisitor(id)`,
/// `tributary.identify(userId)` (remembered for later events) and `tributary.flush()`. Calls
/// queued before it loaded (`window.tributary = window.tributary || []; tributary.push([…])`,
/// or a stub function collecting `tributary.q`) run once it has.
///
/// Events stay in localStorage until the Collector answered 2xx (a 4xx drops them). A batch
/// keeps its `Idempotency-Key` and exact body across retries and page loads, so a retry counts
/// once; only never-sent batches leave with `sendBeacon` when the page is hidden.
///
/// Its source (ES2017, no dependencies, no cookies) is the resource `Resources/t.js`.
public enum TrackerScript {
    /// The script as served: `Resources/t.js` without indentation and comment lines, read once,
    /// when the routes are added.
    public static let body: String = {
        do {
            return compact(try source())
        } catch {
            fatalError("Collector: the tracker does not load: \(error)")  // a packaging error
        }
    }()
    /// A strong validator of `body`, the same on every replica (FNV-1a 64 of its bytes).
    public static let eTag = "\"" + fnv1a64(body) + "\""
    static let buffer = ByteBuffer(string: body)

    public static func addRoutes(to router: Router<some RequestContext>) {
        // Reads the resource now, at start-up: a broken bundle stops the process here.
        _ = buffer
        router.get("/t.js") { request, _ in
            response(ifNoneMatch: request.headers[values: .ifNoneMatch], includeBody: true)
        }
        router.head("/t.js") { request, _ in
            response(ifNoneMatch: request.headers[values: .ifNoneMatch], includeBody: false)
        }
    }

    static func response(ifNoneMatch: [String], includeBody: Bool) -> Response {
        // Public, so that pages may load it with `crossorigin` (Subresource Integrity).
        var headers: HTTPFields = [.cacheControl: "public, max-age=300", .eTag: eTag, .accessControlAllowOrigin: "*"]
        let tags = ifNoneMatch.flatMap { $0.split(separator: ",") }.map { $0.drop(while: \.isWhitespace) }
        if tags.contains(where: { $0 == "*" || $0 == eTag || $0 == "W/" + eTag }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = "application/javascript; charset=utf-8"
        guard includeBody else {
            headers[.contentLength] = String(buffer.readableBytes)
            return Response(status: .ok, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
    }

    /// Drops indentation, blank lines and whole-line `//` comments: the script keeps one
    /// statement per line and no multi-line strings, so nothing else changes.
    static func compact(_ script: String) -> String {
        script.split(separator: "\n")
            .map { $0.drop(while: { $0 == " " }) }
            .filter { !$0.isEmpty && !$0.hasPrefix("//") }
            .joined(separator: "\n") + "\n"
    }

    static func fnv1a64(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }

    /// `Resources/t.js` as the target's bundle holds it.
    static func source() throws -> String {
        guard let url = Bundle.module.url(forResource: "t", withExtension: "js") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: Bundle.module.bundlePath + "/t.js"])
        }
        return try String(contentsOf: url, encoding: .utf8)
    }
}
