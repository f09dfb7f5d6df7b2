import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.cert.X509Certificate;

import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * Checks OUR signatures with the JDK's XMLDSig, independently of our Python verifier.
 *
 * <pre>EmeVerify FILE...</pre>
 *
 * Each FILE is a SOAP envelope or a bare Request/ResponseMessage. The 61968-100 message
 * is taken as its own document (as 504 signs it) and its enveloped signature verified.
 * Prints {@code valid=FILE signer=DN} or {@code invalid=FILE reason=...} per file; exits
 * 0 when every file verified, 1 when any did not, 2 on a usage or parse error.
 */
public final class EmeVerify {
    private EmeVerify() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: EmeVerify FILE...");
            System.exit(2);
        }
        boolean allValid = true;
        for (String file : args) {
            Document doc = EmeXml.parse(Files.readAllBytes(Paths.get(file)));
            Element message = EmeXml.messageElement(doc);
            if (message == null) {
                System.err.println(file + ": no 61968-100 message found");
                System.exit(2);
            }
            try {
                X509Certificate signer = EmeXml.verify(EmeXml.ownDocument(message));
                System.out.println("valid=" + file);
                System.out.println("signer=" + signer.getSubjectX500Principal().getName());
            } catch (EmeXml.SignatureInvalid e) {
                allValid = false;
                System.out.println("invalid=" + file);
                System.out.println("reason=" + e.getMessage());
            }
        }
        System.exit(allValid ? 0 : 1);
    }
}
