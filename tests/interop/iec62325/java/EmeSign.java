import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * Signs a 61968-100 message with the JDK's XMLDSig, so tests can send requests signed by
 * an implementation that is not ours (e.g. to our server, or to {@link EmeServer}).
 *
 * <pre>EmeSign IN OUT KEYSTORE.p12 [PASSWORD] [1.1|1.2]</pre>
 *
 * IN is a SOAP envelope or a bare message; the message is taken as its own document,
 * signed (ds:Signature last in its Header) and written to OUT inside a fresh SOAP
 * envelope of the given version (default 1.1), byte for byte as signed.
 */
public final class EmeSign {
    private EmeSign() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: EmeSign IN OUT KEYSTORE.p12 [PASSWORD] [1.1|1.2]");
            System.exit(2);
        }
        char[] password = (args.length > 3 ? args[3] : "changeit").toCharArray();
        boolean soap12 = args.length > 4 && "1.2".equals(args[4]);
        Document doc = EmeXml.parse(Files.readAllBytes(Paths.get(args[0])));
        Element message = EmeXml.messageElement(doc);
        if (message == null) {
            System.err.println(args[0] + ": no 61968-100 message found");
            System.exit(2);
        }
        Document own = EmeXml.ownDocument(message);
        EmeXml.sign(own, new EmeXml.SigningKey(args[2], password));
        String ns = soap12 ? "http://www.w3.org/2003/05/soap-envelope" : "http://schemas.xmlsoap.org/soap/envelope/";
        String envelope = "<S:Envelope xmlns:S=\"" + ns + "\"><S:Body>"
                + new String(EmeXml.serialize(own.getDocumentElement()), StandardCharsets.UTF_8)
                + "</S:Body></S:Envelope>";
        Files.write(Paths.get(args[1]), envelope.getBytes(StandardCharsets.UTF_8));
        System.out.println("signed=" + args[1]);
    }
}
