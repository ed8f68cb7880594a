using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Tests.Evaluation;

/// <summary>
/// sacreBLEU's published test cases (github.com/mjpost/sacrebleu, test/*.py and README.md at commit f615c72,
/// release 2.6.0), inputs and expected numbers carried over; each test names the file and test it comes from and
/// uses that test's tolerance. Cases marked "derived" are not sacreBLEU's: their expectations were worked out by
/// hand (or, for the tokenizer, by running the four 13a substitutions through Python's <c>re</c>).
/// </summary>
public class TranslationMetricsTests
{
    // test/test_bleu.py and README.md: two reference streams for three hypotheses.
    private static readonly string[][] Refs =
    [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ];
    private static readonly string[] Hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];

    /// <summary>sacreBLEU's <c>raw_corpus_bleu</c>: no tokenization, floor smoothing, effective order.</summary>
    private static BleuOptions Raw(double? floor) =>
        new() { Tokenizer = BleuTokenizer.None, Smoothing = BleuSmoothing.Floor, SmoothValue = floor, EffectiveOrder = true };

    private static double ComputeBleu(long[] counts, long[] totals, long hyp, long reference, BleuOptions o) =>
        Bleu.Compute(counts, totals, hyp, reference, o, out _, out _);

    // ---------------------------------------------------------------- BLEU, corpus

    // test/test_bleu.py::test_corpus_bleu (EPSILON 1e-8): default settings, tokenize 13a, smooth_method none, tokenize none.
    [Theory]
    [InlineData("exp", "13a", 48.530827)]
    [InlineData("none", "13a", 48.530827)]
    [InlineData("exp", "none", 49.1919566)]
    public void CorpusBleuMatchesSacreBleu(string smooth, string tok, double expected)
    {
        var o = new BleuOptions
        {
            Smoothing = smooth == "exp" ? BleuSmoothing.Exp : BleuSmoothing.None,
            Tokenizer = tok == "13a" ? BleuTokenizer.Mteval13a : BleuTokenizer.None,
        };
        Assert.Equal(expected, Bleu.Corpus(Hyps, Refs, o).Score, 1e-8);
    }

    // test/test_bleu.py::test_corpus_bleu (EPSILON 1e-8): "ensure that empty hypotheses are not removed".
    [Fact]
    public void EmptyHypothesesScoreZeroAndKeepTheirReferenceLength()
    {
        var s = Bleu.Corpus(["", "", ""], Refs);
        Assert.Equal(0.0, s.Score);
        Assert.Equal(0, s.HypothesisLength);
        Assert.Equal(0.0, s.BrevityPenalty);
    }

    // README.md, "Using SacreBLEU from Python": BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18),
    // signature nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.0.0 (ours carries 2.6.0, SacreBleu.Version).
    [Fact]
    public void CorpusBleuPrintsWhatTheReadmeShows()
    {
        var s = Bleu.Corpus(Hyps, Refs);
        Assert.Equal("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", s.Signature);
        Assert.Equal("BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)",
            s.ToString());
        Assert.Equal(17, s.HypothesisLength);
        Assert.Equal(18, s.ReferenceLength);
        Assert.Equal(17.0 / 18, s.Ratio, 12);
    }

    // test/test_bleu.py::test_max_ngram_order: f"{score:.2f}" for max_ngram_order 1..6.
    [Theory]
    [InlineData(1, "77.65")]
    [InlineData(2, "60.50")]
    [InlineData(3, "53.93")]
    [InlineData(4, "48.53")]
    [InlineData(5, "46.14")]
    [InlineData(6, "43.28")]
    public void MaxOrderChangesTheScoreAsInSacreBleu(int order, string expected) =>
        Assert.Equal(expected, Bleu.Corpus(Hyps, Refs, new BleuOptions { MaxOrder = order }).Score.ToString("F2", System.Globalization.CultureInfo.InvariantCulture));

    // test/test_bleu.py::test_raw_bleu (raw_corpus_bleu with floor 0.01, EPSILON 1e-8 on score / 100).
    [Fact]
    public void RawBleuMatchesSacreBleu()
    {
        Assert.Equal(0.0, Bleu.Corpus(["this is a test", "another test"], ["ref1", "ref2"], Raw(0.01)).Score / 100, 1e-8);
        Assert.Equal(1.0, Bleu.Corpus(["this is a test"], ["this is a test"], Raw(0.01)).Score / 100, 1e-8);
        Assert.Equal(0.223606797749979, Bleu.Corpus(["this is a fest"], ["this is a test"], Raw(0.01)).Score / 100, 1e-8);
    }

    // test/test_bleu.py::test_effective_order (raw_corpus_bleu with floor 0.01, EPSILON 1e-8 on score / 100).
    [Theory]
    [InlineData("test", "a test", 0.3678794411714425)]
    [InlineData("a test", "a test", 1.0)]
    [InlineData("a little test", "a test", 0.03218297948685433)]
    public void EffectiveOrderMatchesSacreBleu(string hyp, string reference, double expected) =>
        Assert.Equal(expected, Bleu.Corpus([hyp], [reference], Raw(0.01)).Score / 100, 1e-8);

    // test/test_bleu.py::test_statistics: counts [4, 2, 1, 0], totals [6, 5, 4, 3].
    [Fact]
    public void MatchStatisticsMatchSacreBleu()
    {
        var s = Bleu.Corpus(["am I am a character sequence"], ["I am a symbol string sequence a a"], Raw(0.01));
        Assert.Equal(new long[] { 4, 2, 1, 0 }, s.Counts);
        Assert.Equal(new long[] { 6, 5, 4, 3 }, s.Totals);
    }

    // test/test_bleu.py::test_offset (EPSILON 1e-8): floor 0.0 gives 0, the default floor (0.1) 0.1555722182.
    [Fact]
    public void FloorSmoothingMatchesSacreBleu()
    {
        string[] h = ["am I am a character sequence"], r = ["I am a symbol string sequence a a"];
        Assert.Equal(0.0, Bleu.Corpus(h, r, Raw(0.0)).Score / 100, 1e-8);
        Assert.Equal(0.1555722182, Bleu.Corpus(h, r, Raw(null)).Score / 100, 1e-8);
        Assert.Equal(0.1555722182, Bleu.Corpus(h, r, Raw(0.1)).Score / 100, 1e-8);
    }

    // test/test_bleu.py::test_scoring: BLEU.compute_bleu([9,7,5,3], [10,8,6,4], 11, 11) (smooth none) = 0.8375922397 (EPSILON 1e-8).
    [Fact]
    public void ScoreFromStatisticsMatchesSacreBleu() =>
        Assert.Equal(0.8375922397, ComputeBleu([9, 7, 5, 3], [10, 8, 6, 4], 11, 11, new BleuOptions { Smoothing = BleuSmoothing.None }) / 100, 1e-8);

    // test/test_bleu.py::test_degenerate_statistics: floor smoothing with the given value, score exactly 0.
    [Theory]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 4, 4, 2, 1 }, 0, 1, 0.0)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 10, 11, 12, 0 }, 14, 10, 0.0)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 0, 0, 0, 0 }, 0, 0, 0.0)]
    [InlineData(new long[] { 6, 5, 4, 0 }, new long[] { 6, 5, 4, 3 }, 6, 6, 0.0)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 0, 0, 0, 0 }, 0, 0, 0.1)]
    [InlineData(new long[] { 0, 0, 0, 0 }, new long[] { 0, 0, 0, 0 }, 1, 5, 0.01)]
    public void DegenerateStatisticsScoreZero(long[] counts, long[] totals, long hyp, long reference, double floor) =>
        Assert.Equal(0.0, ComputeBleu(counts, totals, hyp, reference, new BleuOptions { Smoothing = BleuSmoothing.Floor, SmoothValue = floor }) / 100);

    // derived: degenerate inputs through the public API — an empty reference (BP 1, ratio 0 as sacreBLEU defines it),
    // an empty hypothesis (BP 0) and no matching word (the early return of sacreBLEU issue #141), each smoothing.
    [Theory]
    [InlineData(BleuSmoothing.Exp)]
    [InlineData(BleuSmoothing.None)]
    [InlineData(BleuSmoothing.Floor)]
    [InlineData(BleuSmoothing.AddK)]
    public void DegenerateInputsScoreZero(BleuSmoothing smoothing)
    {
        var o = new BleuOptions { Smoothing = smoothing };
        var emptyRef = Bleu.Corpus(["a b c"], [""], o);
        Assert.Equal((0.0, 1.0, 0.0, 3L, 0L), (emptyRef.Score, emptyRef.BrevityPenalty, emptyRef.Ratio, emptyRef.HypothesisLength, emptyRef.ReferenceLength));
        var emptyHyp = Bleu.Corpus([""], ["a b c"], o);
        Assert.Equal((0.0, 0.0), (emptyHyp.Score, emptyHyp.BrevityPenalty));
        Assert.Equal(0.0, Bleu.Corpus(["this is a cat"], ["okay thanks"], o).Score);
        Assert.Equal(0.0, Bleu.Corpus([""], [""], o).Score);
    }

    // derived: floor and add-k signatures print their value with two decimals, as BLEUSignature does.
    [Fact]
    public void SignaturesNameTheSmoothingAndItsValue()
    {
        Assert.Equal("nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.10]|version:2.6.0",
            Bleu.Corpus(["a"], ["a"], new BleuOptions { Smoothing = BleuSmoothing.Floor }).Signature);
        Assert.Equal("nrefs:1|case:lc|eff:yes|tok:none|smooth:add-k[1.00]|version:2.6.0",
            Bleu.Corpus(["a"], ["a"], new BleuOptions { Smoothing = BleuSmoothing.AddK, Lowercase = true, EffectiveOrder = true, Tokenizer = BleuTokenizer.None }).Signature);
        Assert.Equal("nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0", Bleu.Sentence("a", "a").Signature);
    }

    // ---------------------------------------------------------------- BLEU, sentence

    private const string SentRef = "producţia de zahăr brut se exprimă în zahăr alb;";
    private const string SentSys = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";

    // test/test_sentence_bleu.py::test_api_sentence_bleu (EPSILON 1e-3), effective_order=True, case mixed;
    // the 'intl' and 'char' tokenizer rows are not carried (those tokenizers are not implemented here).
    [Theory]
    [InlineData(BleuSmoothing.Exp, null, BleuTokenizer.Mteval13a, 8.493)]
    [InlineData(BleuSmoothing.None, null, BleuTokenizer.Mteval13a, 0.0)]
    [InlineData(BleuSmoothing.Floor, null, BleuTokenizer.Mteval13a, 4.51688)]
    [InlineData(BleuSmoothing.Floor, 0.1, BleuTokenizer.Mteval13a, 4.51688)]
    [InlineData(BleuSmoothing.Floor, 0.5, BleuTokenizer.Mteval13a, 10.10)]
    [InlineData(BleuSmoothing.AddK, null, BleuTokenizer.Mteval13a, 14.882)]
    [InlineData(BleuSmoothing.AddK, 1.0, BleuTokenizer.Mteval13a, 14.882)]
    [InlineData(BleuSmoothing.AddK, 2.0, BleuTokenizer.Mteval13a, 21.389)]
    [InlineData(BleuSmoothing.Exp, null, BleuTokenizer.None, 7.347)]
    public void SentenceBleuMatchesSacreBleu(BleuSmoothing smoothing, double? value, BleuTokenizer tok, double expected)
    {
        var o = BleuOptions.SentenceDefault with { Smoothing = smoothing, SmoothValue = value, Tokenizer = tok };
        Assert.Equal(expected, Bleu.Sentence(SentSys, SentRef, o).Score, 1e-3);
    }

    // test/test_sentence_bleu.py::test_compat_sentence_bleu: sentence_bleu's defaults are exp smoothing, 13a, effective order on.
    [Fact]
    public void SentenceBleuDefaultsAreSacreBleusSentenceBleu() =>
        Assert.Equal(8.493, Bleu.Sentence(SentSys, [SentRef]).Score, 1e-3);

    // test/test_sentence_bleu.py::test_api_sentence_bleu_zero (EPSILON 1e-3): no match scores 0 with every smoothing.
    [Theory]
    [InlineData(BleuSmoothing.Exp, null)]
    [InlineData(BleuSmoothing.None, null)]
    [InlineData(BleuSmoothing.Floor, null)]
    [InlineData(BleuSmoothing.Floor, 0.1)]
    [InlineData(BleuSmoothing.AddK, null)]
    [InlineData(BleuSmoothing.AddK, 1.0)]
    public void SentenceBleuWithoutMatchesIsZero(BleuSmoothing smoothing, double? value) =>
        Assert.Equal(0.0, Bleu.Sentence("this is a cat", "okay thanks", BleuOptions.SentenceDefault with { Smoothing = smoothing, SmoothValue = value }).Score, 1e-3);

    // ---------------------------------------------------------------- 13a tokenizer (derived: Python re on sacreBLEU's rules)

    [Theory]
    [InlineData("The dog bit the man.", "The dog bit the man .")]
    [InlineData("It wasn't surprising.", "It wasn't surprising .")]
    [InlineData("Hello, world! (really?)", "Hello , world ! ( really ? )")]
    [InlineData("It costs $3.50, or 3,000 yen.", "It costs $ 3.50 , or 3,000 yen .")]
    [InlineData("1990-2000 and well-known", "1990 - 2000 and well-known")]
    [InlineData("a.b,c 5.x x.5 .5 5.", "a . b , c 5 . x x . 5 . 5 5 .")]
    [InlineData("&quot;Quote&quot; &amp; &lt;tag&gt; &amp;lt;", "\" Quote \" & < tag > <")]
    [InlineData("word<skipped>s and hy-\nphen\nnext", "words and hyphen next")]
    [InlineData("a/b:c;d@e{f}g~h[i]j^k_l`m|n", "a / b : c ; d @ e { f } g ~ h [ i ] j ^ k _ l ` m | n")]
    [InlineData("e.g. U.S.A., 10.", "e . g . U . S . A . , 10 .")]
    [InlineData("x--y 3-4 -5 a-", "x--y 3 - 4 -5 a-")]
    [InlineData("  lots   of\tspace  ", "lots of space")]
    [InlineData("", "")]
    [InlineData("Don't stop-me now!!", "Don't stop-me now ! !")]
    [InlineData("Ünïcödé — “quotes” …", "Ünïcödé — “quotes” …")]
    [InlineData("$100,000.00?", "$ 100,000.00 ?")]
    public void Tokenizer13aSplitsAsMteval(string input, string expected) =>
        Assert.Equal(expected, Tokenizer13a.Tokenize(input));

    // ---------------------------------------------------------------- chrF

    // test/test_chrf.py::test_chrf: char_order 6, word_order 0, beta 3, eps_smoothing=True (EPSILON 1e-4).
    [Theory]
    [InlineData(new[] { "abcdefg" }, new[] { "hijklmnop" }, 0.0)]
    [InlineData(new[] { "a" }, new[] { "b" }, 0.0)]
    [InlineData(new[] { "" }, new[] { "b" }, 0.0)]
    [InlineData(new[] { "" }, new[] { "ref" }, 0.0)]
    [InlineData(new[] { "" }, new[] { "reference" }, 0.0)]
    [InlineData(new[] { "aa" }, new[] { "ab" }, 8.3333)]
    [InlineData(new[] { "a", "b" }, new[] { "a", "c" }, 8.3333)]
    [InlineData(new[] { "a" }, new[] { "a" }, 16.6667)]
    [InlineData(new[] { "a b c" }, new[] { "a b c" }, 50.0)]
    [InlineData(new[] { "a b c" }, new[] { "abc" }, 50.0)]
    [InlineData(new[] { " risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ." },
        new[] { "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ." }, 63.361730)]
    [InlineData(new[] { " Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. " },
        new[] { "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich." }, 64.1302698)]
    [InlineData(new[] { "Niemand hat die Absicht, eine Mauer zu errichten" }, new[] { "Niemand hat die Absicht, eine Mauer zu errichten" }, 100.0)]
    public void ChrFWithEpsSmoothingMatchesSacreBleu(string[] hyps, string[] refs, double expected) =>
        Assert.Equal(expected, ChrF.Corpus(hyps, refs, new ChrFOptions { Beta = 3, EpsSmoothing = true }).Score, 1e-4);

    // test/test_chrf.py::test_chrf_eff_order: beta 3, eps_smoothing=False (sacreBLEU's default averaging) (EPSILON 1e-4).
    [Theory]
    [InlineData(new[] { "a" }, new[] { "a" }, 100.0)]
    [InlineData(new[] { "" }, new[] { "reference" }, 0.0)]
    [InlineData(new[] { "a b c" }, new[] { "a b c" }, 100.0)]
    [InlineData(new[] { "a b c" }, new[] { "abc" }, 100.0)]
    [InlineData(new[] { "" }, new[] { "c" }, 0.0)]
    [InlineData(new[] { "a", "b" }, new[] { "a", "c" }, 50.0)]
    [InlineData(new[] { "aa" }, new[] { "ab" }, 25.0)]
    public void ChrFWithEffectiveOrderMatchesSacreBleu(string[] hyps, string[] refs, double expected) =>
        Assert.Equal(expected, ChrF.Corpus(hyps, refs, new ChrFOptions { Beta = 3 }).Score, 1e-4);

    // test/test_chrf.py::test_chrf_keep_whitespace: beta 3, remove_whitespace=False (EPSILON 1e-4).
    [Theory]
    [InlineData("Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
        "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 67.3481606)]
    [InlineData("risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
        "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .", 65.2414427)]
    public void ChrFKeepingWhitespaceMatchesSacreBleu(string hyp, string reference, double expected) =>
        Assert.Equal(expected, ChrF.Corpus([hyp], [reference], new ChrFOptions { Beta = 3, Whitespace = true }).Score, 1e-4);

    // test/test_chrf.py::test_chrf_sentence_level: sentence_chrf with eps_smoothing=True, beta 2 (EPSILON 1e-4).
    [Theory]
    [InlineData("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
        "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", 39.14078509)]
    [InlineData("Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
        "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", 31.22557079)]
    [InlineData("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
        "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", 57.15704367)]
    public void SentenceChrFMatchesSacreBleu(string hyp, string reference, double expected) =>
        Assert.Equal(expected, ChrF.Sentence(hyp, reference, new ChrFOptions { EpsSmoothing = true }).Score, 1e-4);

    // README.md, "Using SacreBLEU from Python": CHRF().corpus_score(sys, refs) = chrF2 = 59.73 (two reference streams);
    // README.md's CLI examples: chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no and chrF2++|…|nw:2|….
    [Fact]
    public void CorpusChrFPrintsWhatTheReadmeShows()
    {
        var s = ChrF.Corpus(Hyps, Refs);
        Assert.Equal(59.73, s.Score, 0.005);
        Assert.Equal("chrF2|nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 59.73", s.ToString());
        var plus = ChrF.Corpus(Hyps, Refs[0], ChrFOptions.ChrFPlusPlus);
        Assert.Equal("chrF2++", plus.Name);
        Assert.Equal("nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0", plus.Signature);
    }

    // derived by hand: "ab c" vs "a bc" — the characters (whitespace removed) agree, so chrF is 100; chrF++ adds two word
    // orders with no match: orders char 1–3 (P = R = 1) and word 1–2 (P = R = 0) are effective, averages 3/5, F = 60.
    [Fact]
    public void ChrFPlusPlusAddsWordNGrams()
    {
        Assert.Equal(100.0, ChrF.Corpus(["ab c"], ["a bc"]).Score, 1e-9);
        Assert.Equal(60.0, ChrF.Corpus(["ab c"], ["a bc"], ChrFOptions.ChrFPlusPlus).Score, 1e-9);
        // a final period split off as its own word: the same words as the spaced reference, 100
        Assert.Equal(100.0, ChrF.Corpus(["a b."], ["a b ."], ChrFOptions.ChrFPlusPlus).Score, 1e-9);
        // derived: hyp "a b" vs ref "a b c": chrF's averaged P = 1, R = (2/3 + 1/2)/2 = 7/12 → 5·(7/12)/(4 + 7/12) = 7/11
        Assert.Equal(700.0 / 11, ChrF.Corpus(["a b"], ["a b c"]).Score, 1e-9);
    }

    // derived from chrf.py::_remove_punctuation and its note on sacreBLEU issue #124 ("(hi)" → "(hi", ")").
    [Fact]
    public void ChrFPlusPlusSplitsOnePunctuationMarkOffAWord() =>
        Assert.Equal(new[] { "(hi", ")", "\"x", "\"", "a", ".", ",", ".", "b", "don't" }, ChrF.SplitPunctuation("(hi) \"x\" a. , .b don't"));

    // derived: a character outside the BMP is one character, as in Python ("😀😀" has one bigram).
    [Fact]
    public void ChrFCountsCodePointsNotUtf16Units()
    {
        var grams = ChrF.NGrams("😀😀", ChrFOptions.Default);
        Assert.Equal(2, grams[0]["😀"]);
        Assert.Single(grams[1]);
        Assert.Empty(grams[2]);
    }

    // ---------------------------------------------------------------- wrong inputs

    [Fact]
    public void DifferentCountsAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Bleu.Corpus(["a", "b"], ["a"]));
        Assert.Contains("2 hypotheses but 1 references", e.Message);
        Assert.Throws<ArgumentException>(() => ChrF.Corpus(["a"], ["a", "b"]));
        Assert.Throws<ArgumentException>(() => Bleu.Corpus(Hyps, [Refs[0], ["x"]]));
        Assert.Throws<ArgumentException>(() => Bleu.Corpus(Array.Empty<string>(), Array.Empty<string>()));
        Assert.Throws<ArgumentException>(() => PairedBootstrap.Compare(["a", "b"], ["a"], ["a", "b"]));
    }

    // ---------------------------------------------------------------- paired bootstrap

    private static (string[] Baseline, string[] System, string[] References) Systems()
    {
        // 60 sentences; the system gets the reference right more often than the baseline
        var words = "the a dog cat man bit saw ran fast slow house tree".Split(' ');
        var rng = new Whetstone.Tensors.Rng(7);
        var refs = new string[60];
        var bl = new string[60];
        var sys = new string[60];
        for (int i = 0; i < refs.Length; i++)
        {
            var r = Enumerable.Range(0, 8 + rng.NextInt(6)).Select(_ => words[rng.NextInt(words.Length)]).ToArray();
            refs[i] = string.Join(' ', r) + ".";
            string Noisy(double keep) => string.Join(' ', r.Select(w => rng.NextDouble() < keep ? w : words[rng.NextInt(words.Length)])) + ".";
            bl[i] = Noisy(0.6);
            sys[i] = Noisy(0.8);
        }
        return (bl, sys, refs);
    }

    // derived: the resampled corpus score is recomputed from summed per-sentence statistics, so resampling the
    // sentences themselves and scoring them as a corpus gives the same number (sacreBLEU's _bootstrap_resample).
    [Fact]
    public void SummedStatisticsGiveTheCorpusScoreOfTheResample()
    {
        var (_, sys, refs) = Systems();
        int[] pick = [3, 3, 17, 0, 59, 42, 42, 42, 8];
        var rows = Bleu.Statistics(sys, [refs], BleuOptions.Default);
        var summed = Bleu.Sum(pick.Select(i => rows[i]).ToArray());
        var direct = Bleu.Corpus(pick.Select(i => sys[i]).ToArray(), pick.Select(i => refs[i]).ToArray());
        Assert.Equal(direct.Score, Bleu.ScoreOf(summed, BleuOptions.Default), 12);
        var chrRows = ChrF.Statistics(sys, [refs], ChrFOptions.ChrFPlusPlus);
        var chrDirect = ChrF.Corpus(pick.Select(i => sys[i]).ToArray(), pick.Select(i => refs[i]).ToArray(), ChrFOptions.ChrFPlusPlus);
        Assert.Equal(chrDirect.Score, ChrF.FScore(Bleu.Sum(pick.Select(i => chrRows[i]).ToArray()), ChrFOptions.ChrFPlusPlus), 12);
    }

    [Fact]
    public void PairedBootstrapFindsTheBetterSystemAndIsSeeded()
    {
        var (bl, sys, refs) = Systems();
        var r = PairedBootstrap.Compare(bl, sys, refs);
        Assert.Equal(Bleu.Corpus(bl, refs).Score, r.Baseline.Score, 12);
        Assert.Equal(Bleu.Corpus(sys, refs).Score, r.System.Score, 12);
        Assert.Equal(r.System.Score - r.Baseline.Score, r.Difference.Score, 12);
        Assert.True(r.Difference.Score > 5, $"difference {r.Difference.Score}");
        Assert.True(r.PValue < 0.05, $"p = {r.PValue}");
        Assert.True(r.Difference.Lower > 0);
        foreach (var e in new[] { r.Baseline, r.System, r.Difference })
        {
            Assert.InRange(e.Mean, e.Lower, e.Upper);
            Assert.InRange(e.Score, e.Lower, e.Upper);
            Assert.Equal(0.5 * (e.Upper - e.Lower), e.HalfWidth, 12);
        }
        Assert.Equal((1000, 12345UL), (r.Resamples, r.Seed));
        Assert.Equal("nrefs:1|bs:1000|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", r.Signature);
        Assert.Equal(r, PairedBootstrap.Compare(bl, sys, refs));
        var other = PairedBootstrap.Compare(bl, sys, refs, seed: 1);
        Assert.NotEqual(r.System.Lower, other.System.Lower);

        var chrf = PairedBootstrap.Compare(bl, sys, refs, TranslationMetric.ChrF(ChrFOptions.ChrFPlusPlus), resamples: 200);
        Assert.Equal("chrF2++", chrf.Metric);
        Assert.Equal(ChrF.Corpus(sys, refs, ChrFOptions.ChrFPlusPlus).Score, chrf.System.Score, 12);
        Assert.True(chrf.PValue < 0.05);
    }

    // derived: NumPy 1.24.2 (/usr/bin/python3) printed these — SeedSequence(12345).generate_state(4, np.uint64),
    // PCG64(12345).random_raw(3), default_rng(s).choice(n, size) — which sacreBLEU's _bootstrap_resample and
    // _paired_bs_test draw (significance.py), so the resampled indices here are sacreBLEU's.
    [Fact]
    public void BootstrapIndicesAreNumPysDefaultRngChoice()
    {
        Assert.Equal(new ulong[] { 0xb5ae6482a03d837c, 0xbbe2996ffa1f7a2f, 0x64e39a9f37158f94, 0x3ebb0f96a013fd73 },
            NumPyRandom.SeedSequenceState([12345], 4));
        var raw = new NumPyRandom(12345);
        Assert.Equal(new ulong[] { 0x3a32b18db2ffc19d, 0x51171315c9e4c4de, 0xcc2024823444efd9 }, new[] { raw.NextUInt64(), raw.NextUInt64(), raw.NextUInt64() });
        Assert.Equal(new[] { 41, 13, 47, 19, 12, 47, 38, 40, 59, 23 }, Draw(12345, 60, 10));
        Assert.Equal(new[] { 2837, 1877, 2054, 2694, 1736, 2329, 2503, 676, 166, 901, 856, 2623 }, Draw(7, 3003, 12));
        Assert.Equal(new[] { 14159, 4739, 449970, 372584, 915752, 587229, 899436, 151399 }, Draw((1UL << 40) + 5, 1000000, 8));

        static int[] Draw(ulong seed, int n, int count)
        {
            var r = new NumPyRandom(seed);
            return Enumerable.Range(0, count).Select(_ => r.NextIndex(n)).ToArray();
        }
    }

    // derived from significance.py::_paired_bs_test: a system against itself has every |Δ| = 0, none exceeds the
    // observed 0, and the p-value is sacreBLEU's (0 + 1) / (R + 1).
    [Fact]
    public void ASystemAgainstItselfHasNoDifference()
    {
        var (bl, _, refs) = Systems();
        var r = PairedBootstrap.Compare(bl, bl, refs, resamples: 100);
        Assert.Equal((0.0, 0.0, 0.0), (r.Difference.Lower, r.Difference.Upper, r.Difference.Mean));
        Assert.Equal(1.0 / 101, r.PValue, 15);
        Assert.Equal(r.Baseline, r.System);
    }
}
