using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Tfjs;

namespace Whetstone.Models.Tests.Tfjs;

public class JsLiteralTests
{
    [Fact]
    public void ReadsWhatMinifiersWrite()
    {
        var v = JsLiteral.Parse("""{a:.87,b:-.03,c:1e-5,d:-1.5E+3,e:!0,f:!1,g:null,h:void 0,$k:"x\"y\u00e9\x41",'q':'it\'s',"s p":[1,[2,{}],[],],n:0,m:-0,t:true,u:false,}""")!.AsObject();
        Assert.Equal(0.87, (double)v["a"]!);
        Assert.Equal(-0.03, (double)v["b"]!);
        Assert.Equal(1e-5, (double)v["c"]!);
        Assert.Equal(-1500, (double)v["d"]!);
        Assert.True((bool)v["e"]!);
        Assert.False((bool)v["f"]!);
        Assert.Null(v["g"]);
        Assert.True(v.ContainsKey("h") && v["h"] is null);
        Assert.Equal("x\"yéA", (string)v["$k"]!);
        Assert.Equal("it's", (string)v["q"]!);
        Assert.Equal(3, v["s p"]!.AsArray().Count);
        Assert.Equal(2, (double)v["s p"]![1]![0]!);
        Assert.Equal(0, (double)v["n"]!);
        Assert.True((bool)v["t"]! && !(bool)v["u"]!);
    }

    [Fact]
    public void GivesTheSameTreeAsJsonForJson()
    {
        const string json = """{"layers":[{"name":"c","shape":[3,3,null],"w":0.5,"ok":true}],"s":"\\n\u2603"}""";
        Assert.Equal(JsonNode.Parse(json)!.ToJsonString(), JsLiteral.Parse(json)!.ToJsonString());
    }

    [Theory]
    [InlineData("{a:1,,}", "expected a property name")]
    [InlineData("{a:foo}", "'foo' is not a literal value")]
    [InlineData("[1 2]", "expected ',' or ']'")]
    [InlineData("\"unterminated", "unterminated string")]
    [InlineData("[01]", "leading zero")]
    [InlineData("[0x10]", "malformed number")]
    [InlineData("[1.2.3]", "malformed number")]
    [InlineData("[1e]", "malformed exponent")]
    [InlineData("{a:1}garbage", "unexpected text after the value")]
    [InlineData("{a:1,/*c*/b:2}", "comments are not accepted")]
    [InlineData("[!2]", "only !0 and !1")]
    [InlineData("[1,,2]", "holes in arrays")]
    [InlineData("{a:1,a:2}", "duplicate property 'a'")]
    [InlineData("[\"a\\08\"]", "octal escapes")]
    [InlineData("[-]", "malformed number")]
    [InlineData("", "unexpected end of text")]
    public void RejectsWhatIsNotALiteral(string text, string message)
    {
        var e = Assert.Throws<JsLiteralException>(() => JsLiteral.Parse(text));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void ErrorsGiveLineColumnAndOffset()
    {
        var e = Assert.Throws<JsLiteralException>(() => JsLiteral.Parse("{\n  a: 1,\n  b: foo\n}"));
        Assert.Contains("line 3, column 6", e.Message);
        Assert.Equal(15, e.Offset);
        Assert.Contains("b: foo", e.Message);
    }
}
