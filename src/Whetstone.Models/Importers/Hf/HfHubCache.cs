namespace Whetstone.Models.Importers.Hf;

/// <summary>The local Hugging Face hub cache (nothing is downloaded): model names to snapshot folders.</summary>
internal static class HfHubCache
{
    /// <summary>
    /// A folder path as is; otherwise a hub name <c>org/name</c> (or <c>name</c>) looked up in the hub cache:
    /// <c>models--org--name/snapshots/&lt;rev&gt;</c>, the revision from <c>refs/main</c> when present, else the newest snapshot.
    /// </summary>
    public static string Resolve(string pathOrName, Func<string, string?> env)
    {
        if (Directory.Exists(pathOrName)) return System.IO.Path.GetFullPath(pathOrName);
        string hub = env("HF_HUB_CACHE") is { Length: > 0 } h ? h
            : System.IO.Path.Combine(env("HF_HOME") is { Length: > 0 } home ? home
                : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface"), "hub");
        var repo = System.IO.Path.Combine(hub, "models--" + pathOrName.Replace("/", "--", StringComparison.Ordinal));
        var snapshots = System.IO.Path.Combine(repo, "snapshots");
        if (Directory.Exists(snapshots))
        {
            var refMain = System.IO.Path.Combine(repo, "refs", "main");
            if (File.Exists(refMain))
            {
                var rev = System.IO.Path.Combine(snapshots, File.ReadAllText(refMain).Trim());
                if (Directory.Exists(rev)) return rev;
            }
            var newest = new DirectoryInfo(snapshots).GetDirectories()
                .Where(d => File.Exists(System.IO.Path.Combine(d.FullName, "config.json")))
                .OrderByDescending(d => d.LastWriteTimeUtc).FirstOrDefault();
            if (newest is not null) return newest.FullName;
        }
        throw new HfCheckpointException(HfFault.ModelNotFound, pathOrName,
            $"not a folder, and not in the Hugging Face cache (looked for {snapshots}; set HF_HUB_CACHE or HF_HOME, or download the model folder).");
    }

    /// <summary>The file a hub-cache snapshot link points to (snapshots link into blobs/), so sizes and maps are the blob's.</summary>
    public static string RealPath(string path) => File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path;
}
