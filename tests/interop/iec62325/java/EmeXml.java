import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.List;

import javax.xml.XMLConstants;
import javax.xml.crypto.dsig.CanonicalizationMethod;
import javax.xml.crypto.dsig.DigestMethod;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.SignatureMethod;
import javax.xml.crypto.dsig.SignedInfo;
import javax.xml.crypto.dsig.Transform;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMSignContext;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.KeyInfoFactory;
import javax.xml.crypto.dsig.keyinfo.X509Data;
import javax.xml.crypto.dsig.spec.C14NMethodParameterSpec;
import javax.xml.crypto.dsig.spec.TransformParameterSpec;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Source;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMResult;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/**
 * XML helpers of our independent IEC 62325-504 test server, written for these tests
 * (not derived from REE's kit): DOM building and reading, and XMLDSig with the JDK's own
 * {@code javax.xml.crypto.dsig} (enveloped, URI="", inclusive C14N 1.0, rsa-sha256,
 * sha256, KeyInfo with the certificate), so that our Python signer and verifier are
 * checked against an implementation that shares no code with them.
 */
public final class EmeXml {
    public static final String MSG = "http://iec.ch/TC57/2011/schema/message";
    public static final String CMSG = "urn:iec62325.504:messages:1:0";
    public static final String DS = XMLSignature.XMLNS;
    public static final String RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

    private EmeXml() {
    }

    /** A namespace-aware parser that refuses DTDs (no external entities in a test server either). */
    public static DocumentBuilder builder() throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        factory.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        return factory.newDocumentBuilder();
    }

    public static Document parse(byte[] data) throws Exception {
        return builder().parse(new ByteArrayInputStream(data));
    }

    /** Any JAXP source (StAX, stream, DOM) as a fresh namespace-aware DOM document. */
    public static Document toDocument(Source source) throws Exception {
        DOMResult result = new DOMResult(builder().newDocument());
        TransformerFactory.newInstance().newTransformer().transform(source, result);
        return (Document) result.getNode();
    }

    public static byte[] serialize(Node node) throws Exception {
        Transformer transformer = TransformerFactory.newInstance().newTransformer();
        transformer.setOutputProperty(OutputKeys.OMIT_XML_DECLARATION, "yes");
        transformer.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        transformer.transform(new DOMSource(node), new StreamResult(out));
        return out.toByteArray();
    }

    /**
     * The message element "as its own document", the way a 504 signature covers it: the
     * element is serialized (the serializer declares the inherited prefixes it uses) and
     * parsed again, so the SOAP envelope around it plays no part in the digest.
     */
    public static Document ownDocument(Element message) throws Exception {
        return parse(serialize(message));
    }

    public static List<Element> children(Element parent) {
        List<Element> found = new ArrayList<>();
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n.getNodeType() == Node.ELEMENT_NODE) {
                found.add((Element) n);
            }
        }
        return found;
    }

    public static Element child(Element parent, String ns, String local) {
        for (Element e : children(parent)) {
            if (ns.equals(e.getNamespaceURI()) && local.equals(e.getLocalName())) {
                return e;
            }
        }
        return null;
    }

    public static List<Element> childrenNamed(Element parent, String ns, String local) {
        List<Element> found = new ArrayList<>();
        for (Element e : children(parent)) {
            if (ns.equals(e.getNamespaceURI()) && local.equals(e.getLocalName())) {
                found.add(e);
            }
        }
        return found;
    }

    public static String childText(Element parent, String ns, String local) {
        Element e = parent == null ? null : child(parent, ns, local);
        return e == null ? null : e.getTextContent().trim();
    }

    public static Element add(Element parent, String ns, String qname, String text) {
        Element e = parent.getOwnerDocument().createElementNS(ns, qname);
        if (text != null) {
            e.setTextContent(text);
        }
        parent.appendChild(e);
        return e;
    }

    /** A private key and its certificate from the first key entry of a PKCS12 file. */
    public static final class SigningKey {
        public final PrivateKey key;
        public final X509Certificate certificate;

        public SigningKey(String path, char[] password) throws Exception {
            KeyStore store = KeyStore.getInstance("PKCS12");
            try (java.io.FileInputStream in = new java.io.FileInputStream(path)) {
                store.load(in, password);
            }
            for (Enumeration<String> aliases = store.aliases(); aliases.hasMoreElements();) {
                String alias = aliases.nextElement();
                if (store.isKeyEntry(alias)) {
                    key = (PrivateKey) store.getKey(alias, password);
                    certificate = (X509Certificate) store.getCertificate(alias);
                    return;
                }
            }
            throw new IllegalArgumentException("no private key entry in " + path);
        }
    }

    /**
     * Signs {@code doc} (whose root is a Request/ResponseMessage) in place: the
     * ds:Signature becomes the last child of msg:Header.
     */
    public static void sign(Document doc, SigningKey signer) throws Exception {
        XMLSignatureFactory factory = XMLSignatureFactory.getInstance("DOM");
        Reference reference = factory.newReference(
                "",
                factory.newDigestMethod(DigestMethod.SHA256, null),
                Collections.singletonList(
                        factory.newTransform(Transform.ENVELOPED, (TransformParameterSpec) null)),
                null,
                null);
        SignedInfo info = factory.newSignedInfo(
                factory.newCanonicalizationMethod(
                        CanonicalizationMethod.INCLUSIVE, (C14NMethodParameterSpec) null),
                factory.newSignatureMethod(RSA_SHA256, null),
                Collections.singletonList(reference));
        KeyInfoFactory kif = factory.getKeyInfoFactory();
        List<Object> x509 = new ArrayList<>();
        x509.add(kif.newX509IssuerSerial(
                signer.certificate.getIssuerX500Principal().getName(),
                signer.certificate.getSerialNumber()));
        x509.add(signer.certificate.getSubjectX500Principal().getName());
        x509.add(signer.certificate);
        X509Data data = kif.newX509Data(x509);
        KeyInfo keyInfo = kif.newKeyInfo(Collections.singletonList(data));
        Element header = child(doc.getDocumentElement(), MSG, "Header");
        if (header == null) {
            throw new IllegalArgumentException("message has no msg:Header to sign into");
        }
        DOMSignContext context = new DOMSignContext(signer.key, header);
        context.setDefaultNamespacePrefix("ds");
        factory.newXMLSignature(info, keyInfo).sign(context);
    }

    /** Thrown by {@link #verify} with a human readable reason. */
    public static final class SignatureInvalid extends Exception {
        public SignatureInvalid(String reason) {
            super(reason);
        }
    }

    /**
     * Verifies the one enveloped signature of {@code doc} (root = the message as its own
     * document) with the certificate carried in its KeyInfo; returns that certificate.
     * Only the 504 profile is accepted: one signature, in the Header, URI="", rsa-sha256.
     */
    public static X509Certificate verify(Document doc) throws Exception {
        NodeList signatures = doc.getElementsByTagNameNS(DS, "Signature");
        if (signatures.getLength() == 0) {
            throw new SignatureInvalid("the message is not signed");
        }
        if (signatures.getLength() > 1) {
            throw new SignatureInvalid("the message holds " + signatures.getLength() + " signatures");
        }
        Element signature = (Element) signatures.item(0);
        Node parent = signature.getParentNode();
        if (!(parent instanceof Element)
                || !MSG.equals(parent.getNamespaceURI())
                || !"Header".equals(parent.getLocalName())
                || parent.getParentNode() != doc.getDocumentElement()) {
            throw new SignatureInvalid("ds:Signature is not a child of the message's Header");
        }
        X509Certificate certificate = certificateOf(signature);
        DOMValidateContext context = new DOMValidateContext(certificate.getPublicKey(), signature);
        context.setProperty("org.jcp.xml.dsig.secureValidation", Boolean.TRUE);
        XMLSignatureFactory factory = XMLSignatureFactory.getInstance("DOM");
        XMLSignature xml = factory.unmarshalXMLSignature(context);
        SignedInfo info = xml.getSignedInfo();
        if (!RSA_SHA256.equals(info.getSignatureMethod().getAlgorithm())) {
            throw new SignatureInvalid("signature method " + info.getSignatureMethod().getAlgorithm());
        }
        if (info.getReferences().size() != 1
                || !"".equals(((Reference) info.getReferences().get(0)).getURI())) {
            throw new SignatureInvalid("expected exactly one Reference with URI=\"\"");
        }
        if (!xml.validate(context)) {
            boolean value = xml.getSignatureValue().validate(context);
            boolean digest = ((Reference) info.getReferences().get(0)).validate(context);
            throw new SignatureInvalid("signature does not verify (signature value ok=" + value
                    + ", reference digest ok=" + digest + ")");
        }
        return certificate;
    }

    private static X509Certificate certificateOf(Element signature) throws Exception {
        NodeList certs = signature.getElementsByTagNameNS(DS, "X509Certificate");
        if (certs.getLength() != 1) {
            throw new SignatureInvalid("KeyInfo must carry exactly one X509Certificate");
        }
        byte[] der = java.util.Base64.getMimeDecoder().decode(certs.item(0).getTextContent());
        return (X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(der));
    }

    /** The 61968-100 message element of a SOAP envelope's Body (or the root, when not an envelope). */
    public static Element messageElement(Document doc) {
        Element root = doc.getDocumentElement();
        if (MSG.equals(root.getNamespaceURI())) {
            return root;
        }
        for (Element part : children(root)) {
            if ("Body".equals(part.getLocalName())) {
                List<Element> body = children(part);
                return body.isEmpty() ? null : body.get(0);
            }
        }
        return null;
    }
}
