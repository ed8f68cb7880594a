using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Whetstone.Training.Data;

namespace Whetstone.Training.Tests.Data;

/// <summary>The zText format and the versification tables, on small modules written here.</summary>
public class SwordFormatTests
{
    /// <summary>
    /// Writes a zText (or zText4) module of the KJV versification: every entry empty except <paramref name="verses"/>,
    /// which go into blocks of two entries each (so both the block number and the offset in a block are exercised).
    /// </summary>
    internal static string WriteModule(TempDir dir, Dictionary<(string Book, int Chapter, int Verse), string> verses, bool zText4 = false, string conf = "")
    {
        var v11n = Versification.Kjv;
        File.WriteAllText(dir.File("mods.d", "tiny.conf"),
            $"[Tiny]\nDataPath=./modules/texts/ztext/tiny/\nModDrv={(zText4 ? "zText4" : "zText")}\nSourceType=OSIS\nEncoding=UTF-8\nCompressType=ZIP\nBlockType=BOOK\nVersification=KJV\n{conf}");
        foreach (int t in new[] { 1, 2 })
        {
            var entries = new (uint Block, uint Offset, uint Size)[v11n.EntryCount(t)];
            var blocks = new List<byte[]>();
            var current = new MemoryStream();
            int inBlock = 0;
            foreach (var ((book, c, v), text) in verses.OrderBy(x => v11n.IndexOf(x.Key.Book, x.Key.Chapter, x.Key.Verse)))
            {
                var (testament, index) = v11n.IndexOf(book, c, v);
                if (testament != t) continue;
                var bytes = Encoding.UTF8.GetBytes(text);
                entries[index] = ((uint)blocks.Count, (uint)current.Length, (uint)bytes.Length);
                current.Write(bytes);
                if (++inBlock == 2) { blocks.Add(current.ToArray()); current = new MemoryStream(); inBlock = 0; }
            }
            if (current.Length > 0) blocks.Add(current.ToArray());
            string prefix = t == 1 ? "ot" : "nt";
            using (var bzz = File.Create(dir.File("modules", "texts", "ztext", "tiny", prefix + ".bzz")))
            using (var bzs = File.Create(dir.File("modules", "texts", "ztext", "tiny", prefix + ".bzs")))
                foreach (var block in blocks)
                {
                    var z = new MemoryStream();
                    using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zs.Write(block);
                    var rec = new byte[12];
                    BinaryPrimitives.WriteUInt32LittleEndian(rec, (uint)bzz.Position);
                    BinaryPrimitives.WriteUInt32LittleEndian(rec.AsSpan(4), (uint)z.Length);
                    BinaryPrimitives.WriteUInt32LittleEndian(rec.AsSpan(8), (uint)block.Length);
                    bzs.Write(rec);
                    bzz.Write(z.ToArray());
                }
            int rs = zText4 ? 12 : 10;
            var bzv = new byte[entries.Length * rs];
            for (int i = 0; i < entries.Length; i++)
            {
                var span = bzv.AsSpan(i * rs, rs);
                BinaryPrimitives.WriteUInt32LittleEndian(span, entries[i].Block);
                BinaryPrimitives.WriteUInt32LittleEndian(span[4..], entries[i].Offset);
                if (zText4) BinaryPrimitives.WriteUInt32LittleEndian(span[8..], entries[i].Size);
                else BinaryPrimitives.WriteUInt16LittleEndian(span[8..], (ushort)entries[i].Size);
            }
            File.WriteAllBytes(dir.File("modules", "texts", "ztext", "tiny", prefix + ".bzv"), bzv);
        }
        return dir.Path;
    }

    private static readonly Dictionary<(string, int, int), string> Sample = new()
    {
        [("Gen", 0, 0)] = "<title type=\"main\">Genesis</title>",
        [("Gen", 1, 1)] = "<w lemma=\"strong:H7225\">In the beginning</w> God<note placement=\"foot\">a note</note>created.",
        [("Gen", 1, 2)] = "The earth &amp; the deep.",
        [("Exod", 1, 1)] = "Names.",
        [("Mal", 4, 6)] = "Last of the Old.",
        [("Matt", 1, 1)] = "First of the New.",
        [("John", 3, 16)] = "<q who=\"Jesus\">For God so loved the world.</q>",
        [("Rev", 22, 21)] = "Amen. <div sID=\"g1\" type=\"glossary\"/>Abba: father.",
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SyntheticModuleReadsBackEveryVerseAtItsIndex(bool zText4)
    {
        using var dir = new TempDir();
        var m = SwordModule.Open(WriteModule(dir, Sample, zText4));
        Assert.Equal("Tiny", m.Name);
        Assert.Equal("KJV", m.Versification.Name);
        Assert.Equal("In the beginning God created.", m.Text("Gen", 1, 1));
        Assert.Equal("The earth & the deep.", m.Text("Gen", 1, 2));
        Assert.Equal("<title type=\"main\">Genesis</title>", m.Markup("Gen", 0, 0));
        Assert.Equal("Names.", m.Text("Exod", 1, 1));
        Assert.Equal("Last of the Old.", m.Text("Mal", 4, 6));
        Assert.Equal("First of the New.", m.Text("Matt", 1, 1));
        Assert.Equal("For God so loved the world.", m.Text("John", 3, 16));
        Assert.Equal("Amen.", m.Text("Rev", 22, 21));
        Assert.Equal("", m.Text("Gen", 1, 3));
        var all = m.Verses().ToList();
        Assert.Equal(31102, all.Count);
        // Gen 0:0 is the book heading, not a verse
        Assert.Equal(["Gen.1.1", "Gen.1.2", "Exod.1.1", "Mal.4.6", "Matt.1.1", "John.3.16", "Rev.22.21"], all.Where(v => v.Text.Length > 0).Select(v => v.Ref));
    }

    [Fact]
    public void VersificationIndexCountsTheHeadingEntries()
    {
        var kjv = Versification.Kjv;
        Assert.Equal((24115, 8246), (kjv.EntryCount(1), kjv.EntryCount(2)));   // the RV1909 module's ot.bzv / nt.bzv are 10 bytes each
        Assert.Equal((31027, 8248), (Versification.Nrsva.EntryCount(1), Versification.Nrsva.EntryCount(2)));   // the WEB's
        Assert.Equal(31102, kjv.VerseCount);
        Assert.Equal(31102 + 2 + 6687, Versification.Nrsva.VerseCount);
        Assert.Equal((1, 2), kjv.IndexOf("Gen", 0, 0));   // 0 empty, 1 testament heading, 2 Genesis heading
        Assert.Equal((1, 3), kjv.IndexOf("Gen", 1, 0));
        Assert.Equal((1, 4), kjv.IndexOf("Gen", 1, 1));
        Assert.Equal((1, 1588), kjv.IndexOf("Exod", 1, 1));   // 4 + Genesis's 1533 verses and 50 chapter headings, + Exodus heading
        Assert.Equal((2, 4), kjv.IndexOf("Matt", 1, 1));
        Assert.Equal((2, 8245), kjv.IndexOf("Rev", 22, 21));
        Assert.Equal((2, 8247), Versification.Nrsva.IndexOf("Rev", 22, 21));
        Assert.Equal(15, Versification.Nrsva.Book("3John").VersesPerChapter[0]);
        Assert.Equal(14, kjv.Book("3John").VersesPerChapter[0]);
        Assert.False(kjv.Contains("Tob", 1, 1));
        Assert.True(Versification.Nrsva.Contains("Tob", 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => kjv.IndexOf("Gen", 51, 1));
    }

    [Theory]
    [InlineData("<w lemma=\"strong:H0430\">God</w><note placement=\"foot\"><reference>1:1 </reference>Elohim.</note><w>created</w>", "God created")]
    [InlineData("earth<note>a <note>nested</note> note</note>. Next", "earth. Next")]
    [InlineData("Christ,<note>n</note><w>the</w> son", "Christ, the son")]
    [InlineData("<title type=\"section\">A heading</title> <div sID=\"p1\" type=\"x-p\"/>Text", "Text")]
    [InlineData("<title canonical=\"true\" type=\"psalm\">A Psalm.</title><l sID=\"l1\"/>Yahweh<l eID=\"l1\"/><l sID=\"l2\"/>is", "A Psalm. Yahweh is")]
    [InlineData("ejército<transChange type=\"added\">se llamaba</transChange><w>Sísara</w>, y", "ejército se llamaba Sísara, y")]
    [InlineData("&lt;a&gt; &#65;&#x42; &quot;q&quot;  \n spaced", "<a> AB \"q\" spaced")]
    [InlineData("Amen. <div sID=\"g9\" type=\"glossary\"/> Abba <div eID=\"g9\" type=\"glossary\"/> after", "Amen. after")]
    [InlineData("said, “<w>Let</w>", "said, “Let")]
    public void MarkupBecomesPlainText(string markup, string plain) => Assert.Equal(plain, SwordMarkup.ToPlain(markup));

    [Fact]
    public void MissingFileNamesItAndWhatItHolds()
    {
        using var dir = new TempDir();
        var m = SwordModule.Open(WriteModule(dir, Sample));
        File.Delete(dir.File("modules", "texts", "ztext", "tiny", "nt.bzv"));
        Assert.Equal("In the beginning God created.", m.Text("Gen", 1, 1));   // the Old Testament's files are all there
        var e = Assert.Throws<DataException>(() => m.Text("John", 3, 16));
        Assert.Contains($"'{dir.File("modules", "texts", "ztext", "tiny", "nt.bzv")}' is missing (expected the verse index of a zText module)", e.Message);
        var e2 = Assert.Throws<DataException>(() => SwordModule.Open(Path.Combine(dir.Path, "nowhere")));
        Assert.Contains("nowhere", e2.Message);
    }

    [Fact]
    public void IndexOfTheWrongLengthSaysWhatTheVersificationExpects()
    {
        using var dir = new TempDir();
        var m = SwordModule.Open(WriteModule(dir, Sample));
        var bzv = dir.File("modules", "texts", "ztext", "tiny", "ot.bzv");
        File.WriteAllBytes(bzv, File.ReadAllBytes(bzv)[..^10]);
        var e = Assert.Throws<DataException>(() => m.Text("Gen", 1, 1));
        Assert.Contains($"'{bzv}' is 241140 bytes; the KJV versification's Old Testament has 24115 entries of 10 bytes = 241150 bytes", e.Message);
    }

    [Fact]
    public void RecordPointingPastTheBlocksIsAnError()
    {
        using var dir = new TempDir();
        var m = SwordModule.Open(WriteModule(dir, Sample));
        var bzv = dir.File("modules", "texts", "ztext", "tiny", "nt.bzv");
        var bytes = File.ReadAllBytes(bzv);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4 * 10), 99);   // Matt 1:1's block
        File.WriteAllBytes(bzv, bytes);
        var e = Assert.Throws<DataException>(() => m.Text("Matt", 1, 1));
        Assert.Contains($"'{bzv}': entry 4 points to block 99, but '{dir.File("modules", "texts", "ztext", "tiny", "nt.bzs")}' has 2 blocks", e.Message);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4 * 10), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4 * 10 + 4), 1000);
        File.WriteAllBytes(bzv, bytes);
        var e2 = Assert.Throws<DataException>(() => SwordModule.Open(dir.Path).Text("Matt", 1, 1));
        Assert.Contains("entry 4 (offset 1000, size 17) runs past the end of block 0", e2.Message);
    }

    [Fact]
    public void CorruptBlockIsAnErrorNamingTheFile()
    {
        using var dir = new TempDir();
        WriteModule(dir, Sample);
        var bzz = dir.File("modules", "texts", "ztext", "tiny", "ot.bzz");
        var bytes = File.ReadAllBytes(bzz);
        for (int i = 2; i < bytes.Length; i++) bytes[i] ^= 0x5A;
        File.WriteAllBytes(bzz, bytes);
        var e = Assert.Throws<DataException>(() => SwordModule.Open(dir.Path).Text("Gen", 1, 1));
        Assert.Contains($"SWORD block 0 of '{bzz}'", e.Message);
    }

    [Fact]
    public void UnsupportedDriverOrCompressionIsRefused()
    {
        using var dir = new TempDir();
        WriteModule(dir, Sample);
        var conf = dir.File("mods.d", "tiny.conf");
        File.WriteAllText(conf, File.ReadAllText(conf).Replace("ModDrv=zText", "ModDrv=RawText"));
        var e = Assert.Throws<DataException>(() => SwordModule.Open(dir.Path));
        Assert.Contains($"'{conf}': ModDrv=RawText, expected zText or zText4", e.Message);
        File.WriteAllText(conf, File.ReadAllText(conf).Replace("ModDrv=RawText", "ModDrv=zText").Replace("CompressType=ZIP", "CompressType=LZSS"));
        Assert.Contains("CompressType=LZSS, only ZIP", Assert.Throws<DataException>(() => SwordModule.Open(dir.Path)).Message);
    }

    [Fact]
    public void AlignmentSplitAndWritersOnSyntheticModules()
    {
        using var en = new TempDir();
        using var es = new TempDir();
        WriteModule(en, new() { [("Ruth", 1, 1)] = "In the days.", [("Ruth", 1, 2)] = "The name.", [("Gen", 1, 1)] = "In the beginning.", [("Gen", 1, 2)] = "Formless." });
        WriteModule(es, new() { [("Ruth", 1, 1)] = "Y aconteció.", [("Ruth", 1, 3)] = "Y murió.", [("Gen", 1, 1)] = "En el principio.", [("Gen", 1, 2)] = "Desordenada\tvacía." });
        var r = BiblePairs.Align(en.Path, es.Path);
        Assert.Equal(["Gen.1.1", "Gen.1.2", "Ruth.1.1"], r.Pairs.Select(p => p.Ref));
        Assert.Equal("Desordenada vacía.", r.Pairs[1].Spanish);   // the tab is whitespace, normalised
        Assert.Equal((0, 0, 1, 1, 31102 - 5), (r.OnlyInEnglish, r.OnlyInSpanish, r.EmptyInEnglish, r.EmptyInSpanish, r.EmptyInBoth));
        Assert.Equal((0, 0), (r.InMisalignedRuns, r.LengthMismatch));
        var split = BiblePairs.Split(r.Pairs);
        Assert.Equal(["Gen.1.1", "Gen.1.2"], split.Train.Select(p => p.Ref));
        Assert.Equal(["Ruth.1.1"], split.Test.Select(p => p.Ref));
        Assert.Empty(split.Validation);
        Assert.Throws<ArgumentException>(() => BiblePairs.Split(r.Pairs, ["Ruth"], ["ruth"]));

        using var o = new TempDir();
        BiblePairs.WriteTsv(o.File("p.tsv"), r.Pairs);
        Assert.Equal(["ref\tsource\ttarget", "Gen.1.1\tIn the beginning.\tEn el principio.", "Gen.1.2\tFormless.\tDesordenada vacía.", "Ruth.1.1\tIn the days.\tY aconteció."],
            File.ReadAllLines(o.File("p.tsv")));
        BiblePairs.WriteJsonl(o.File("p.jsonl"), r.Pairs, spanishToEnglish: true);
        var first = JsonDocument.Parse(File.ReadAllLines(o.File("p.jsonl"))[0]).RootElement;
        Assert.Equal(("Gen.1.1", "En el principio.", "In the beginning."), (first.GetProperty("ref").GetString(), first.GetProperty("source").GetString(), first.GetProperty("target").GetString()));
        Assert.Contains("\"Desordenada vacía.\"", File.ReadAllText(o.File("p.jsonl")));   // accents unescaped
    }
}

/// <summary>The real modules: World English Bible (asset bible_web) and Reina-Valera 1909 (bible_sparv).</summary>
public class SwordBibleTests
{
    private static void RequireAssets()
    {
        foreach (var a in new[] { "bible_web", "bible_sparv" })
            if (!Assets.IsCached(a))
                Assert.Fail($"Asset {a} is not cached in {Assets.CacheDir}: run scripts/fetch-assets bible_web bible_sparv (scripts/test does).");
    }

    private static readonly Lazy<(SwordModule En, SwordModule Es, BiblePairsResult Pairs)> Loaded = new(() =>
    {
        var en = SwordModule.Open(Assets.Root("bible_web"));
        var es = SwordModule.Open(Assets.Root("bible_sparv"));
        return (en, es, BiblePairs.Align(en, es));
    });

    [Theory]
    [InlineData("Gen", 1, 1, "In the beginning, God created the heavens and the earth.", "EN el principio crió Dios los cielos y la tierra.")]
    [InlineData("John", 3, 16, "For God so loved the world, that he gave his only born Son, that whoever believes in him should not perish, but have eternal life.",
        "Porque de tal manera amó Dios al mundo, que ha dado á su Hijo unigénito, para que todo aquel que en él cree, no se pierda, mas tenga vida eterna.")]
    [InlineData("Ps", 23, 1, "A Psalm by David. Yahweh is my shepherd; I shall lack nothing.", "Salmo de David. JEHOVÁ es mi pastor; nada me faltará.")]
    [InlineData("John", 11, 35, "Jesus wept.", "Y lloró Jesús.")]
    [InlineData("Rev", 22, 21, "The grace of the Lord Jesus Christ be with all the saints. Amen.", "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén.")]
    [InlineData("Matt", 1, 1, "The book of the genealogy of Jesus Christ, the son of David, the son of Abraham.", "LIBRO de la generación de Jesucristo, hijo de David, hijo de Abraham.")]
    public void KnownVersesReadExactly(string book, int chapter, int verse, string english, string spanish)
    {
        RequireAssets();
        var (en, es, _) = Loaded.Value;
        Assert.Equal(english, en.Text(book, chapter, verse));
        Assert.Equal(spanish, es.Text(book, chapter, verse));
    }

    [Fact]
    public void ModulesDeclareTheirVersifications()
    {
        RequireAssets();
        var (en, es, _) = Loaded.Value;
        Assert.Equal(("engWEB2015eb", "NRSVA", "OSIS"), (en.Name, en.Versification.Name, en.SourceType));
        Assert.Equal(("spaRV1909eb", "KJV", "OSIS"), (es.Name, es.Versification.Name, es.SourceType));
        Assert.StartsWith("The book of the words of Tobit, the son of Tobiel", en.Text("Tob", 1, 1));
        Assert.Contains("ejército se llamaba Sísara", es.Text("Judg", 4, 2));
    }

    [Fact]
    public void AlignmentCountsAreTheMeasuredOnes()
    {
        RequireAssets();
        var r = Loaded.Value.Pairs;
        Assert.Equal(30842, r.Pairs.Count);
        Assert.Equal(6689, r.OnlyInEnglish);   // 6,687 deuterocanon verses + 3 John 1:15 + Revelation 12:18
        Assert.Equal(0, r.OnlyInSpanish);
        Assert.Equal(7, r.EmptyInEnglish);     // Luke 17:36, Acts 8:37, 15:34, 24:7, Romans 16:25-27 (only in notes)
        Assert.Equal(18, r.EmptyInSpanish);
        Assert.Equal(0, r.EmptyInBoth);
        // RV1909 chapters (or chapter ends) numbered differently in its source and so held shifted against KJV
        Assert.Equal(["Num.13.1-33", "Num.30.1-16", "Judg.14.17-20", "1Sam.24.1-22", "2Sam.2.29-32", "1Kgs.22.44-53", "1Chr.21.16-30",
            "2Chr.33.1-24", "Job.39.1-30", "Job.40.1-19", "Ps.60.9-12", "Hos.12.1-14", "Jonah.2.1-10", "Rom.14.19-23", "2Cor.13.9-13",
            "1Tim.6.16-21", "Heb.13.22-25", "2Pet.1.18-21"], r.MisalignedRuns);
        Assert.Equal(229, r.InMisalignedRuns);
        Assert.Equal(6, r.LengthMismatch);
        Assert.Equal(Versification.Kjv.VerseCount + 2 + 6687, r.Pairs.Count + r.Dropped);
    }

    [Fact]
    public void MarkupIsFullyStripped()
    {
        RequireAssets();
        foreach (var p in Loaded.Value.Pairs.Pairs)
        {
            Assert.True(p.English.IndexOfAny(['<', '>']) < 0 && p.Spanish.IndexOfAny(['<', '>']) < 0, $"{p.Ref}: {p.English} | {p.Spanish}");
            Assert.True(!p.English.Contains("  ") && p.English == p.English.Trim() && !p.Spanish.Contains("  "), p.Ref);
        }
    }

    [Fact]
    public void SplitKeepsBooksApart()
    {
        RequireAssets();
        var s = BiblePairs.Split(Loaded.Value.Pairs.Pairs);
        Assert.Equal((30075, 239, 528), (s.Train.Count, s.Validation.Count, s.Test.Count));
        var train = s.Train.Select(p => p.Book).ToHashSet();
        Assert.Empty(train.Intersect(s.Test.Select(p => p.Book)));
        Assert.Empty(train.Intersect(s.Validation.Select(p => p.Book)));
        Assert.Empty(s.Test.Select(p => p.Book).Intersect(s.Validation.Select(p => p.Book)));
        Assert.Equal(BiblePairs.TestBooks.Order(), s.Test.Select(p => p.Book).Distinct().Order());
        Assert.Equal(BiblePairs.ValidationBooks.Order(), s.Validation.Select(p => p.Book).Distinct().Order());
    }
}
