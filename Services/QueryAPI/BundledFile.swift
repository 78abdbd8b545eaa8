import Foundation

/// The files of `Resources/` (declared in Package.swift), read from the target's bundle.
enum BundledFile {
    /// The text of `Resources/<path>`, e.g. `dashboard/index.html`.
    static func text(_ path: String) throws -> String {
        let file = path as NSString, subdirectory = file.deletingLastPathComponent
        guard let url = Bundle.module.url(
            forResource: (file.lastPathComponent as NSString).deletingPathExtension, withExtension: file.pathExtension,
            subdirectory: subdirectory.isEmpty ? nil : subdirectory
        ) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: Bundle.module.bundlePath + "/" + path])
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// What `load` reads. A resource that does not load is a packaging error: it stops the
    /// process at start-up, since the routes read every resource when they are added.
    static func required<Value>(_ load: () throws -> Value) -> Value {
        do {
            return try load()
        } catch {
            fatalError("QueryAPI: a resource does not load: \(error)")
        }
    }
}
