using System.Text;
using Whetstone.Training.Data;

namespace Whetstone.Training.Tests.Text;

public sealed class EmailTests
{
    [Fact]
    public void Plain_message_with_folded_headers_and_an_encoded_subject()
    {
        var m = Email.Parse("From someone@example.com  Thu Aug 22 2002\nSubject: =?utf-8?B?Q2Fmw6k=?= =?iso-8859-1?Q?_cr=E8me?=\nX-Long: first\n  second\n\nHello,\nworld.\n");
        Assert.Equal("Café crème", m.Subject);
        Assert.Equal("first second", m.Header("x-long"));
        Assert.Equal("Hello,\nworld.", m.Body);
        Assert.Equal("Café crème\n\nHello,\nworld.", m.ToText());
    }

    [Fact]
    public void Multipart_alternative_prefers_plain_text_and_decodes_quoted_printable()
    {
        const string raw = "Subject: offer\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"XYZ\"\n\npreamble\n--XYZ\n" +
            "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nPrix: 10 =80 la pi=E8ce, tr=\nes bon\n" +
            "--XYZ\nContent-Type: text/html\n\n<p>ignored</p>\n--XYZ--\nepilogue\n";
        var m = Email.Parse(raw);
        Assert.Equal("Prix: 10 \u0080 la pièce, tres bon", m.Body);   // iso-8859-1 0x80 is a C1 control
    }

    [Fact]
    public void Multipart_mixed_with_base64_html_and_an_attachment()
    {
        var html = "<html><head><style>p{color:red}</style></head><body><p>Buy&nbsp;<b>NOW</b> &amp; save</p><br>50% off<script>x()</script></body></html>";
        var b64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(html));
        var raw = "Content-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
            b64[..40] + "\n" + b64[40..] + "\n--b1\nContent-Type: application/zip; name=x.zip\nContent-Transfer-Encoding: base64\n\nUEsDBA==\n--b1--\n";
        Assert.Equal("Buy NOW & save\n50% off", Email.Parse(raw).Body);
    }

    [Fact]
    public void Bodies_without_a_charset_are_utf8_when_valid_else_windows_1252()
    {
        Assert.Equal("naïve", Email.Parse(Encoding.UTF8.GetBytes("Subject: x\n\nnaïve")).Body);
        Assert.Equal("“quoted”", Email.Parse([.. "Subject: x\n\n"u8, 0x93, .. "quoted"u8, 0x94]).Body);
    }
}
