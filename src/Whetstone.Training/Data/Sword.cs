using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Whetstone.Training.Data;

/// <summary>One verse of a module: its reference, its markup as stored and its plain text.</summary>
public sealed record SwordVerse(string Book, int Chapter, int Verse, string Markup, string Text)
{
    public string Ref => $"{Book}.{Chapter}.{Verse}";
}

/// <summary>
/// A SWORD Bible module in the compressed <b>zText</b> format (and zText4), the format of Debian's
/// <c>sword-text-*</c> packages. A module is a <c>mods.d/NAME.conf</c> (INI: <c>[NAME]</c>, then <c>DataPath</c>,
/// <c>ModDrv=zText</c>, <c>CompressType=ZIP</c>, <c>BlockType</c>, <c>Versification</c>, <c>SourceType</c>,
/// <c>Encoding</c>) and, per testament (<c>ot</c>, <c>nt</c>), three files in the data folder:
/// <list type="bullet">
/// <item><c>.bzs</c> block index: per block offset, compressed size, uncompressed size (3 × uint32 LE);</item>
/// <item><c>.bzv</c> verse index, one record per entry of the versification (see <see cref="Versification"/>):
/// block number uint32, offset in the uncompressed block uint32, size uint16 (zText4: uint32), all LE; size 0 is an
/// empty entry;</item>
/// <item><c>.bzz</c> the blocks, each a zlib stream.</item>
/// </list>
/// Blocks are decompressed on first use and kept. Errors (a missing file, an index whose length does not fit the
/// versification, a record pointing outside its block) are <see cref="DataException"/>s naming the file.
/// </summary>
public sealed class SwordModule
{
    public string Name { get; }
    public string ConfPath { get; }
    public string DataPath { get; }
    public IReadOnlyDictionary<string, string> Conf { get; }
    public Versification Versification { get; }
    /// <summary>Markup of the entries: OSIS, ThML, GBF or Plain.</summary>
    public string SourceType { get; }

    private readonly Testament?[] _testaments = new Testament?[3];
    private readonly Encoding _encoding;
    private readonly int _recordSize;   // of a .bzv record: 10 (zText), 12 (zText4)

    private SwordModule(string confPath, string swordRoot)
    {
        ConfPath = confPath;
        var (name, conf) = ReadConf(confPath);
        Name = name;
        Conf = conf;
        string Get(string key, string fallback) => conf.TryGetValue(key, out var v) && v.Length > 0 ? v : fallback;
        var driver = Get("ModDrv", "");
        if (!driver.Equals("zText", StringComparison.OrdinalIgnoreCase) && !driver.Equals("zText4", StringComparison.OrdinalIgnoreCase))
            throw new DataException($"SWORD module '{confPath}': ModDrv={driver}, expected zText or zText4 (the compressed Bible format).");
        var compress = Get("CompressType", "LZSS");
        if (!compress.Equals("ZIP", StringComparison.OrdinalIgnoreCase))
            throw new DataException($"SWORD module '{confPath}': CompressType={compress}, only ZIP (zlib) is supported.");
        var dataPath = Get("DataPath", "");
        if (dataPath.Length == 0) throw new DataException($"SWORD module '{confPath}' has no DataPath= line.");
        DataPath = Path.GetFullPath(Path.Combine(swordRoot, dataPath.TrimStart('.', '/')));
        try { Versification = Versification.Get(Get("Versification", "KJV")); }
        catch (NotSupportedException e) { throw new DataException($"SWORD module '{confPath}': {e.Message}", e); }
        SourceType = Get("SourceType", "Plain");
        _encoding = Get("Encoding", "Latin-1").Equals("UTF-8", StringComparison.OrdinalIgnoreCase) ? new UTF8Encoding(false, false) : Encoding.Latin1;
        _recordSize = driver.Equals("zText4", StringComparison.OrdinalIgnoreCase) ? 12 : 10;
    }

    /// <summary>
    /// Opens a module: <paramref name="path"/> is its .conf file, or a SWORD folder holding <c>mods.d/</c> (also found
    /// under <c>usr/share/sword/</c>, the layout of an unpacked Debian package). <paramref name="name"/> picks the
    /// module when the folder has several.
    /// </summary>
    public static SwordModule Open(string path, string? name = null)
    {
        if (File.Exists(path)) return new SwordModule(Path.GetFullPath(path), Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(path)))!);
        if (!Directory.Exists(path)) throw new DataException($"SWORD module '{path}': no such file or folder (expected a .conf file or a folder with mods.d/).");
        var root = Directory.Exists(Path.Combine(path, "mods.d")) ? path
            : Directory.Exists(Path.Combine(path, "usr", "share", "sword", "mods.d")) ? Path.Combine(path, "usr", "share", "sword")
            : throw new DataException($"SWORD folder '{path}' has no mods.d/ folder of module .conf files.");
        var confs = Directory.GetFiles(Path.Combine(root, "mods.d"), "*.conf").Order(StringComparer.Ordinal).ToArray();
        if (name is not null)
        {
            var pick = confs.FirstOrDefault(c => ReadConf(c).Name.Equals(name, StringComparison.OrdinalIgnoreCase))
                ?? throw new DataException($"SWORD folder '{root}' has no module [{name}]; it has: {string.Join(", ", confs.Select(c => ReadConf(c).Name))}.");
            return new SwordModule(Path.GetFullPath(pick), Path.GetFullPath(root));
        }
        return confs.Length switch
        {
            0 => throw new DataException($"SWORD folder '{Path.Combine(root, "mods.d")}' has no .conf file."),
            1 => new SwordModule(Path.GetFullPath(confs[0]), Path.GetFullPath(root)),
            _ => throw new DataException($"SWORD folder '{root}' has {confs.Length} modules ({string.Join(", ", confs.Select(c => ReadConf(c).Name))}); name one."),
        };
    }

    private static (string Name, Dictionary<string, string> Conf) ReadConf(string path)
    {
        string? name = null;
        var conf = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            if (line[0] == '[' && line[^1] == ']') { name ??= line[1..^1]; continue; }
            int eq = line.IndexOf('=');
            if (eq <= 0) continue;   // continuation lines of long values
            var key = line[..eq].Trim();
            conf.TryAdd(key, line[(eq + 1)..].Trim());   // repeated keys (GlobalOptionFilter): the first is kept
        }
        return (name ?? throw new DataException($"SWORD module '{path}': no [ModuleName] line, expected the .conf of a module."), conf);
    }

    /// <summary>The stored markup of an index entry (chapter 0 verse 0: the book heading; verse 0: the chapter heading);
    /// "" for an empty entry.</summary>
    public string Markup(string book, int chapter, int verse)
    {
        var (t, index) = Versification.IndexOf(book, chapter, verse);
        return Load(t).Entry(index);
    }

    /// <summary>Plain text of a verse: markup stripped, notes dropped, whitespace normalised.</summary>
    public string Text(string book, int chapter, int verse) => ToPlain(Markup(book, chapter, verse));

    /// <summary>Every verse of the versification in order, with its markup and plain text (empty ones included).</summary>
    public IEnumerable<SwordVerse> Verses()
    {
        foreach (var book in Versification.Books)
            for (int c = 1; c <= book.Chapters; c++)
                for (int v = 1; v <= book.VersesPerChapter[c - 1]; v++)
                {
                    var markup = Markup(book.OsisId, c, v);
                    yield return new SwordVerse(book.OsisId, c, v, markup, ToPlain(markup));
                }
    }

    private string ToPlain(string markup) => SourceType.ToUpperInvariant() switch
    {
        "OSIS" or "THML" or "GBF" => SwordMarkup.ToPlain(markup),
        _ => SwordMarkup.Normalise(markup),
    };

    private Testament Load(int t) => _testaments[t] ??= new Testament(this, t == 1 ? "ot" : "nt", Versification.EntryCount(t), t == 1 ? "Old" : "New");

    /// <summary>The three files of one testament, read whole (the largest, the WEB's ot.bzz, is 3 MB).</summary>
    private sealed class Testament
    {
        private readonly SwordModule _m;
        private readonly string _bzs, _bzv, _bzz;
        private readonly byte[] _blocks, _verses, _data;
        private readonly byte[]?[] _cache;

        public Testament(SwordModule m, string prefix, int expectedEntries, string testament)
        {
            _m = m;
            _bzs = Path.Combine(m.DataPath, prefix + ".bzs");
            _bzv = Path.Combine(m.DataPath, prefix + ".bzv");
            _bzz = Path.Combine(m.DataPath, prefix + ".bzz");
            _blocks = Read(_bzs, "the block index");
            _verses = Read(_bzv, "the verse index");
            _data = Read(_bzz, "the compressed blocks");
            if (_blocks.Length % 12 != 0)
                throw new DataException($"SWORD block index '{_bzs}' is {_blocks.Length} bytes, not a whole number of 12-byte records (offset, size, uncompressed size).");
            int rs = m._recordSize;
            if (_verses.Length != expectedEntries * rs)
                throw new DataException($"SWORD verse index '{_bzv}' is {_verses.Length} bytes; the {m.Versification.Name} versification's {testament} Testament has {expectedEntries} entries of {rs} bytes = {expectedEntries * rs} bytes.");
            _cache = new byte[_blocks.Length / 12][];
        }

        private static byte[] Read(string path, string what) => File.Exists(path) ? File.ReadAllBytes(path)
            : throw new DataException($"SWORD module file '{path}' is missing (expected {what} of a zText module).");

        public string Entry(int index)
        {
            int rs = _m._recordSize;
            var rec = _verses.AsSpan(index * rs, rs);
            uint block = BinaryPrimitives.ReadUInt32LittleEndian(rec);
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(rec[4..]);
            uint size = rs == 10 ? BinaryPrimitives.ReadUInt16LittleEndian(rec[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(rec[8..]);
            if (size == 0) return "";
            if (block >= _cache.Length)
                throw new DataException($"SWORD verse index '{_bzv}': entry {index} points to block {block}, but '{_bzs}' has {_cache.Length} blocks.");
            var data = Block((int)block);
            if ((ulong)offset + size > (ulong)data.Length)
                throw new DataException($"SWORD verse index '{_bzv}': entry {index} (offset {offset}, size {size}) runs past the end of block {block} ({data.Length} bytes).");
            return _m._encoding.GetString(data, (int)offset, (int)size).TrimEnd('\0');
        }

        private byte[] Block(int b)
        {
            if (_cache[b] is { } done) return done;
            var rec = _blocks.AsSpan(b * 12, 12);
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(rec), size = BinaryPrimitives.ReadUInt32LittleEndian(rec[4..]);
            uint full = BinaryPrimitives.ReadUInt32LittleEndian(rec[8..]);
            if ((ulong)offset + size > (ulong)_data.Length)
                throw new DataException($"SWORD block index '{_bzs}': block {b} (offset {offset}, size {size}) runs past the end of '{_bzz}' ({_data.Length} bytes).");
            var output = new byte[full];
            try
            {
                using var z = new ZLibStream(new MemoryStream(_data, (int)offset, (int)size), CompressionMode.Decompress);
                z.ReadExactly(output);
                if (z.ReadByte() >= 0) throw new InvalidDataException($"more than the {full} bytes the block index gives");
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
            {
                throw new DataException($"SWORD block {b} of '{_bzz}' (offset {offset}, {size} bytes) does not inflate to the {full} bytes '{_bzs}' gives: {e.Message}", e);
            }
            return _cache[b] = output;
        }
    }
}

/// <summary>
/// Verse markup (OSIS, ThML, GBF-as-tags) to plain text. Content dropped: notes (<c>&lt;note&gt;</c>, with their
/// references and readings), non-canonical titles (section headings; a psalm's canonical title is kept) and speaker
/// labels. Every other element keeps its text (<c>&lt;w&gt;</c> words, <c>&lt;transChange&gt;</c> added words,
/// quotes, names; an added word's <c>&lt;transChange&gt;</c> is a word of its own, since RV1909 sets it flush against
/// its neighbours: "ejército&lt;transChange&gt;se llamaba&lt;/transChange&gt;&lt;w&gt;Sísara"). Front and back matter divisions (glossary, introduction, …) are dropped. Where a dropped element or a structural tag (line, paragraph, division, line break) stood, a space
/// is put if the next text starts with a letter, digit or opening quote, so "God&lt;note&gt;…&lt;/note&gt;created"
/// reads "God created" but "earth&lt;note&gt;…&lt;/note&gt;." keeps its full stop. Entities are decoded and
/// whitespace is collapsed to single spaces.
/// </summary>
public static class SwordMarkup
{
    private static readonly HashSet<string> Dropped = new(StringComparer.OrdinalIgnoreCase) { "note", "title", "speaker", "rf", "scripRef" };
    private static readonly HashSet<string> Breaks = new(StringComparer.OrdinalIgnoreCase)
        { "l", "lg", "lb", "div", "transChange", "p", "br", "chapter", "verse", "milestone", "item", "list", "title", "speaker", "note", "rf", "scripRef" };

    /// <summary>Division types of front and back matter that verse entries sometimes carry (the WEB's glossary sits in
    /// the entry of Revelation 22:21): dropped with their content.</summary>
    private static readonly HashSet<string> MatterDivs = new(StringComparer.OrdinalIgnoreCase)
        { "glossary", "back", "front", "introduction", "x-introduction", "preface", "coverPage", "titlePage", "appendix", "index", "concordance" };

    public static string ToPlain(string markup)
    {
        var sb = new StringBuilder(markup.Length);
        var skip = new Stack<string>();   // names of the open dropped elements
        string? skipUntil = null;         // the sID of a milestone division of front or back matter being dropped
        bool pendingSpace = false;
        int i = 0;
        while (i < markup.Length)
        {
            char ch = markup[i];
            if (ch == '<')
            {
                int end = markup.IndexOf('>', i);
                if (end < 0) break;   // a cut-off tag at the end
                var tag = markup.AsSpan(i + 1, end - i - 1);
                i = end + 1;
                bool closing = tag.Length > 0 && tag[0] == '/';
                bool selfClosing = tag.Length > 0 && tag[^1] == '/';
                var name = TagName(closing ? tag[1..] : tag);
                if (Breaks.Contains(name)) pendingSpace = true;
                if (skipUntil is not null)
                {
                    if (Attribute(tag, "eID") == skipUntil) skipUntil = null;
                    continue;
                }
                if (!closing && name == "div" && Attribute(tag, "type") is { } divType && MatterDivs.Contains(divType))
                {
                    if (selfClosing) skipUntil = Attribute(tag, "sID") ?? "";   // "" never matches: to the end of the entry
                    else skip.Push(name);
                    continue;
                }
                if (selfClosing) continue;   // milestones (sID/eID) carry no text
                if (closing)
                {
                    if (skip.Count > 0 && skip.Peek().Equals(name, StringComparison.OrdinalIgnoreCase)) skip.Pop();
                }
                else if (skip.Count > 0 ? skip.Peek().Equals(name, StringComparison.OrdinalIgnoreCase) : Drops(name, tag))
                    skip.Push(name);   // a nested element of the same name inside a dropped one is tracked too
                continue;
            }
            if (skip.Count > 0 || skipUntil is not null) { i++; continue; }
            string text;
            if (ch == '&' && markup.IndexOf(';', i) is var semi and > 0 && semi - i <= 10 && Entity(markup.AsSpan(i + 1, semi - i - 1)) is { } decoded)
            {
                text = decoded;
                i = semi + 1;
            }
            else { text = ch.ToString(); i++; }
            if (pendingSpace && !char.IsWhiteSpace(text[0]))
            {
                if (sb.Length > 0 && !char.IsWhiteSpace(sb[^1]) && (char.IsLetterOrDigit(text[0]) || text[0] is '“' or '‘' or '«' or '¿' or '¡' or '(' or '"'))
                    sb.Append(' ');
                pendingSpace = false;
            }
            else if (pendingSpace) pendingSpace = false;
            sb.Append(text);
        }
        return Normalise(sb.ToString());
    }

    private static string? Attribute(ReadOnlySpan<char> tag, string name)
    {
        var t = tag.ToString();
        for (int at = t.IndexOf(name + "=\"", StringComparison.Ordinal); at >= 0; at = t.IndexOf(name + "=\"", at + 1, StringComparison.Ordinal))
        {
            if (at > 0 && !char.IsWhiteSpace(t[at - 1])) continue;   // "sID" inside "osisID"
            int start = at + name.Length + 2, end = t.IndexOf('"', start);
            return end < 0 ? null : t[start..end];
        }
        return null;
    }

    private static bool Drops(string name, ReadOnlySpan<char> tag) =>
        Dropped.Contains(name) && !(name.Equals("title", StringComparison.OrdinalIgnoreCase) && tag.Contains("canonical=\"true\"", StringComparison.Ordinal));

    private static string TagName(ReadOnlySpan<char> tag)
    {
        int n = 0;
        while (n < tag.Length && !char.IsWhiteSpace(tag[n]) && tag[n] != '/') n++;
        return tag[..n].ToString();
    }

    private static string? Entity(ReadOnlySpan<char> e)
    {
        switch (e)
        {
            case "amp": return "&";
            case "lt": return "<";
            case "gt": return ">";
            case "quot": return "\"";
            case "apos": return "'";
            case "nbsp": return " ";
        }
        if (e.Length > 1 && e[0] == '#')
        {
            bool hex = e[1] is 'x' or 'X';
            if (int.TryParse(e[(hex ? 2 : 1)..], hex ? System.Globalization.NumberStyles.HexNumber : System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out int code) && code is > 0 and <= 0x10FFFF and not (>= 0xD800 and <= 0xDFFF))
                return char.ConvertFromUtf32(code);
        }
        return null;
    }

    /// <summary>Collapses every run of whitespace to one space and trims the ends.</summary>
    public static string Normalise(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool space = false;
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c)) { space = sb.Length > 0; continue; }
            if (space) { sb.Append(' '); space = false; }
            sb.Append(c);
        }
        return sb.ToString();
    }
}
