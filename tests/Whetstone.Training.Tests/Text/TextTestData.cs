using System.Text.Json.Nodes;
using Whetstone.Tensors;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Text;

/// <summary>Generated review sentences over <see cref="TinyVectors"/>' words: JSONL with a review and stars (5 or 1), alternating.</summary>
internal static class TextTestData
{
    public static string Sentences(TempDir dir, string name, int n, int seed)
    {
        var rng = new Rng((ulong)seed);
        string Pick(string[] a) => a[(int)(rng.NextDouble() * a.Length)];
        var lines = new List<string>();
        for (int i = 0; i < n; i++)
        {
            bool pos = i % 2 == 0;
            var w = pos ? TinyVectors.Positive : TinyVectors.Negative;
            var text = $"{Pick(["The", "the", "It"])} {Pick(TinyVectors.Neutral)} {Pick(["was", "is"])} {Pick(w)}, {Pick(["really", "so", "zebra"])} {Pick(w)}!";
            lines.Add(new JsonObject { ["review"] = text, ["stars"] = pos ? 5 : 1 }.ToJsonString());
        }
        var p = dir.File(name);
        File.WriteAllLines(p, lines);
        return p;
    }
}
