/// The dashboard page served at `/`: one self-contained HTML document (no CDN: many servers
/// have no internet) that reads the report endpoints with a read key or the admin token.
enum Dashboard {
    static let page = """
        <!doctype html><html><head><meta charset="utf-8"><title>Tributary</title></head>
        <body><h1>Tributary</h1><p>The dashboard is being built.</p></body></html>
        """
}
