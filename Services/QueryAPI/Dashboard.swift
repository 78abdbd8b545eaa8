import Foundation

/// The dashboard page served at `/`: one self-contained HTML document (no CDN, no web fonts:
/// many servers have no internet) that reads the same-origin report endpoints with a site's
/// read key or the admin token. Every figure on screen is the API's own text (money is the
/// answer's decimal `amount` and its currency, never summed across currencies nor computed
/// with floats) and carries a `data-testid`, so Tests/Browser/dashboard_test.py can compare
/// the page with the API.
///
/// Its sources are `Resources/dashboard/`: `index.html` links `dashboard.css` and
/// `dashboard.js` (so it also opens from disk while editing); the page as served has both
/// inlined, so it needs no other request.
enum Dashboard {
    /// Read and assembled once, when the routes are added.
    static let page: String = BundledFile.required(load)

    static func load() throws -> String {
        let html = try BundledFile.text("dashboard/index.html")
        let withStyle = try inline(
            #"<link rel="stylesheet" href="dashboard.css">"#,
            with: "<style>\n" + BundledFile.text("dashboard/dashboard.css") + "</style>", in: html
        )
        return try inline(
            #"<script src="dashboard.js"></script>"#,
            with: "<script>\n" + BundledFile.text("dashboard/dashboard.js") + "</script>", in: withStyle
        )
    }

    struct MissingReference: Error, CustomStringConvertible {
        let tag: String
        var description: String { "dashboard/index.html must contain \(tag) exactly once" }
    }

    /// `html` with its one `tag` replaced by `content`.
    static func inline(_ tag: String, with content: String, in html: String) throws -> String {
        let parts = html.components(separatedBy: tag)
        guard parts.count == 2 else { throw MissingReference(tag: tag) }
        return parts[0] + content + parts[1]
    }
}
