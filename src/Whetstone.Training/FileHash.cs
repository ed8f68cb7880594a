using System.Security.Cryptography;

namespace Whetstone.Training;

/// <summary>SHA-256 (lower-case hex) streamed over files in the given order, identifying a base model in a bundle.</summary>
internal static class FileHash
{
    /// <param name="withNames">Also hash each file's name (then a newline) before its contents.</param>
    public static string Sha256(IEnumerable<string> files, bool withNames)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        foreach (var f in files)
        {
            if (withNames) sha.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetFileName(f) + "\n"));
            using var s = File.OpenRead(f);
            int n;
            while ((n = s.Read(buf)) > 0) sha.AppendData(buf.AsSpan(0, n));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
