import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import javax.annotation.Resource;
import javax.xml.namespace.QName;
import javax.xml.soap.Detail;
import javax.xml.soap.SOAPConstants;
import javax.xml.soap.SOAPElement;
import javax.xml.soap.SOAPFactory;
import javax.xml.soap.SOAPFault;
import javax.xml.transform.Source;
import javax.xml.transform.stream.StreamSource;
import javax.xml.ws.Provider;
import javax.xml.ws.Service;
import javax.xml.ws.ServiceMode;
import javax.xml.ws.WebServiceContext;
import javax.xml.ws.WebServiceProvider;
import javax.xml.ws.soap.SOAPFaultException;

import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * The {@code request} operation of IEC 62325-504 as a JAX-WS {@link Provider} in MESSAGE
 * mode: the whole envelope in, the whole envelope out. MESSAGE mode lets us answer with
 * the exact bytes we signed (the runtime re-emits a stream message as read), instead of
 * letting SAAJ re-home namespace declarations after the signature was computed.
 *
 * Implements list (by Code, by interval), get (by Code or MessageIdentification), put
 * (binary Compressed/BINARY, or an inline XML document) and query serverTimestamp.
 * Every line it prints is {@code key=value}, read by the Python fixture.
 */
@WebServiceProvider(
        serviceName = "ServiceEME",
        portName = "Service_EME_Port",
        targetNamespace = "urn:iec62325.504:wss:1:0")
@ServiceMode(Service.Mode.MESSAGE)
public final class EmeService implements Provider<Source> {
    private final EmeServer.Settings settings;
    private final boolean soap12;

    @Resource
    private WebServiceContext context;

    public EmeService(EmeServer.Settings settings, boolean soap12) {
        this.settings = settings;
        this.soap12 = soap12;
    }

    /** A 504 error: becomes a SOAP fault with msg:FaultMessage in its detail. */
    static final class EmeError extends Exception {
        final String code;
        final boolean client;

        EmeError(String code, String details, boolean client) {
            super(details);
            this.code = code;
            this.client = client;
        }

        EmeError(String code, String details) {
            this(code, details, true);
        }
    }

    @Override
    public Source invoke(Source request) {
        try {
            Document envelope = EmeXml.toDocument(request);
            Element message = EmeXml.messageElement(envelope);
            if (message == null
                    || !EmeXml.MSG.equals(message.getNamespaceURI())
                    || !"RequestMessage".equals(message.getLocalName())) {
                throw new EmeError("HAND-006", "the Body must hold one msg:RequestMessage");
            }
            Document own = EmeXml.ownDocument(message);
            return answer(handle(own.getDocumentElement()));
        } catch (EmeError e) {
            EmeServer.event("fault", e.code + " " + e.getMessage());
            throw fault(e);
        } catch (SOAPFaultException e) {
            throw e;
        } catch (Exception e) {
            e.printStackTrace();
            EmeServer.event("fault", "HAND-022 " + e);
            throw fault(new EmeError("HAND-022", "server error: " + e, false));
        }
    }

    private Document handle(Element request) throws Exception {
        Element header = EmeXml.child(request, EmeXml.MSG, "Header");
        if (header == null) {
            throw new EmeError("HAND-002", "RequestMessage has no Header");
        }
        String verb = EmeXml.childText(header, EmeXml.MSG, "Verb");
        String noun = EmeXml.childText(header, EmeXml.MSG, "Noun");
        EmeServer.event("request", verb + " " + noun);
        // Any ds:Signature anywhere counts as "signed": a misplaced one is then refused by
        // verify() instead of being ignored (signature wrapping).
        boolean signed = request.getElementsByTagNameNS(EmeXml.DS, "Signature").getLength() > 0;
        if (signed) {
            try {
                X509Certificate signer = EmeXml.verify(request.getOwnerDocument());
                EmeServer.event("signer", signer.getSubjectX500Principal().getName());
            } catch (EmeXml.SignatureInvalid e) {
                throw new EmeError("HAND-007", "Invalid signature: " + e.getMessage());
            }
        }
        Element req = EmeXml.child(request, EmeXml.MSG, "Request");
        Map<String, String> options = options(req);
        if ("get".equals(verb) && "MessageList".equals(noun)) {
            return list(options, req);
        }
        if ("get".equals(verb) && "QueryData".equals(noun)) {
            return query(options);
        }
        if ("get".equals(verb)) {
            return get(options);
        }
        if ("create".equals(verb)) {
            if (!signed && "required".equals(settings.putSignature)) {
                throw new EmeError("HAND-007", "Invalid signature: put requests must be signed");
            }
            return put(noun, req, EmeXml.child(request, EmeXml.MSG, "Payload"));
        }
        throw new EmeError("HAND-005", "Unsupported combination: [verb=" + verb + "][noun=" + noun + "]");
    }

    private static Map<String, String> options(Element req) {
        Map<String, String> options = new HashMap<>();
        if (req != null) {
            for (Element option : EmeXml.childrenNamed(req, EmeXml.MSG, "Option")) {
                String value = EmeXml.childText(option, EmeXml.MSG, "value");
                options.put(EmeXml.childText(option, EmeXml.MSG, "name"), value == null ? "" : value);
            }
        }
        return options;
    }

    private Document list(Map<String, String> options, Element req) throws Exception {
        List<EmeServer.Entry> entries = settings.store.scan();
        String code = options.get("Code");
        String start = EmeXml.childText(req, EmeXml.MSG, "StartTime");
        String end = EmeXml.childText(req, EmeXml.MSG, "EndTime");
        String msgType = options.get("MsgType");
        long after = -1;
        Instant from = null;
        Instant to = null;
        if (code != null) {
            try {
                after = Long.parseLong(code);
            } catch (NumberFormatException e) {
                throw new EmeError("LST-002", "Invalid operation parameters. Code must be an integer value.");
            }
            if (after < 0) {
                throw new EmeError("LST-001", "Invalid parameters. Code must be a positive integer value.");
            }
        } else if (start != null && end != null) {
            from = Instant.parse(start);
            to = Instant.parse(end);
            if (to.isBefore(from)) {
                throw new EmeError("LST-003", "EndTime cannot precede StartTime.");
            }
        } else {
            throw new EmeError("LST-005", "You must provide either Code or StartTime and EndTime");
        }
        Document doc = response("MessageList");
        Element list = EmeXml.add(payload(doc), EmeXml.CMSG, "cmsg:MessageList", null);
        list.setAttributeNS("http://www.w3.org/2000/xmlns/", "xmlns:cmsg", EmeXml.CMSG);
        int count = 0;
        for (EmeServer.Entry entry : entries) {
            if (after >= 0 && entry.code <= after) {
                continue;
            }
            if (from != null && (entry.time.isBefore(from) || entry.time.isAfter(to))) {
                continue;
            }
            if (msgType != null && !msgType.equals(entry.type)) {
                continue;
            }
            Element m = EmeXml.add(list, EmeXml.CMSG, "cmsg:Message", null);
            EmeXml.add(m, EmeXml.CMSG, "cmsg:Code", Long.toString(entry.code));
            EmeXml.add(m, EmeXml.CMSG, "cmsg:MessageIdentification", entry.name);
            EmeXml.add(m, EmeXml.CMSG, "cmsg:MessageVersion", "1");
            EmeXml.add(m, EmeXml.CMSG, "cmsg:Status", "OK");
            Element interval = EmeXml.add(m, EmeXml.CMSG, "cmsg:ApplicationTimeInterval", null);
            EmeXml.add(interval, EmeXml.CMSG, "cmsg:start", time(entry.time));
            EmeXml.add(interval, EmeXml.CMSG, "cmsg:end", time(entry.time));
            EmeXml.add(m, EmeXml.CMSG, "cmsg:ServerTimestamp", time(entry.time));
            EmeXml.add(m, EmeXml.CMSG, "cmsg:Type", entry.type);
            EmeXml.add(m, EmeXml.CMSG, "cmsg:Owner", settings.owner);
            count++;
        }
        EmeServer.event("list", Long.toString(after) + " " + count);
        return doc;
    }

    private Document get(Map<String, String> options) throws Exception {
        String code = options.get("Code");
        String id = options.get("MessageIdentification");
        EmeServer.Entry found = null;
        for (EmeServer.Entry entry : settings.store.scan()) {
            if ((code != null && code.equals(Long.toString(entry.code)))
                    || (code == null && id != null && id.equals(entry.name))) {
                found = entry;
            }
        }
        if (code == null && id == null) {
            throw new EmeError("GET-004", "You must provide Code or MessageIdentification and MessageVersion values.");
        }
        if (found == null) {
            throw new EmeError("GET-006", "The requested message doesn't exist.");
        }
        Document doc = response("Compressed");
        Element reply = EmeXml.child(doc.getDocumentElement(), EmeXml.MSG, "Reply");
        Element name = EmeXml.add(reply, EmeXml.MSG, "ID", found.name);
        name.setAttribute("idType", "name");
        Element payload = payload(doc);
        byte[] data = Files.readAllBytes(found.path);
        EmeXml.add(payload, EmeXml.MSG, "Compressed", Base64.getEncoder().encodeToString(data));
        EmeXml.add(payload, EmeXml.MSG, "Format", "BINARY");
        EmeServer.event("get", found.code + " " + found.name);
        return doc;
    }

    private Document put(String noun, Element req, Element payload) throws Exception {
        if (payload == null) {
            throw new EmeError("PUT-013", "Received message has no payload or it is empty.");
        }
        String name = null;
        if (req != null) {
            for (Element id : EmeXml.childrenNamed(req, EmeXml.MSG, "ID")) {
                if ("name".equals(id.getAttribute("idType"))) {
                    name = id.getTextContent().trim();
                }
            }
        }
        String compressed = EmeXml.childText(payload, EmeXml.MSG, "Compressed");
        String format = EmeXml.childText(payload, EmeXml.MSG, "Format");
        byte[] data;
        if (compressed != null) {
            if (!"Compressed".equals(noun) || !"BINARY".equals(format)) {
                throw new EmeError("PUT-003", "Malformed request: [provided noun=" + noun
                        + "] [format=" + format + "] expected noun Compressed with Format BINARY");
            }
            if (name == null) {
                throw new EmeError("PUT-017", "Invalid operation parameters. a binary put needs Request/ID idType=\"name\"");
            }
            try {
                data = Base64.getMimeDecoder().decode(compressed);
            } catch (IllegalArgumentException e) {
                throw new EmeError("PUT-011", "Invalid binary payload: " + e.getMessage());
            }
        } else {
            List<Element> documents = EmeXml.children(payload);
            if (documents.isEmpty() || !noun.equals(documents.get(0).getLocalName())) {
                throw new EmeError("PUT-003", "Malformed request: [provided noun=" + noun + "]");
            }
            data = EmeXml.serialize(documents.get(0));
            if (name == null) {
                name = noun + "_" + System.currentTimeMillis() + ".xml";
            }
        }
        if (name.isEmpty() || name.startsWith(".") || name.contains("/") || name.contains("\\")) {
            throw new EmeError("PUT-017", "Invalid operation parameters. bad file name [" + name + "]");
        }
        Path target = settings.inbox.resolve(name);
        Path temp = settings.inbox.resolve("." + name + ".part");
        Files.write(temp, data);
        Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        EmeServer.event("put", name + " " + data.length);
        Document doc = response(noun);
        Element reply = EmeXml.child(doc.getDocumentElement(), EmeXml.MSG, "Reply");
        EmeXml.add(reply, EmeXml.MSG, "ID", name).setAttribute("idType", "name");
        // REE's client refuses a put answer without a Payload (HAND-011), even an empty one.
        payload(doc);
        return doc;
    }

    private Document query(Map<String, String> options) throws Exception {
        String type = options.get("DataType");
        if (type == null) {
            throw new EmeError("QRY-001", "Invalid parameters. DataType value must be provided.");
        }
        if (!"serverTimestamp".equals(type)) {
            throw new EmeError("QRY-002", "Invalid parameters. Provided DataType value (" + type + ") is not recognized.");
        }
        Document doc = response("QueryData");
        Element data = EmeXml.add(payload(doc), EmeXml.CMSG, "cmsg:QueryData", null);
        data.setAttributeNS("http://www.w3.org/2000/xmlns/", "xmlns:cmsg", EmeXml.CMSG);
        Element parameters = EmeXml.add(data, EmeXml.CMSG, "cmsg:RequestParameters", null);
        Element parameter = EmeXml.add(parameters, EmeXml.CMSG, "cmsg:Parameter", null);
        EmeXml.add(parameter, EmeXml.CMSG, "cmsg:name", "DataType");
        EmeXml.add(parameter, EmeXml.CMSG, "cmsg:value", "serverTimestamp");
        EmeXml.add(data, EmeXml.CMSG, "cmsg:ServerTimestamp", time(Instant.now()));
        EmeServer.event("query", type);
        return doc;
    }

    static String time(Instant instant) {
        return instant.truncatedTo(ChronoUnit.MILLIS).toString();
    }

    private Document response(String noun) throws Exception {
        Document doc = EmeXml.builder().newDocument();
        Element root = doc.createElementNS(EmeXml.MSG, "ResponseMessage");
        root.setAttributeNS("http://www.w3.org/2000/xmlns/", "xmlns", EmeXml.MSG);
        doc.appendChild(root);
        Element header = EmeXml.add(root, EmeXml.MSG, "Header", null);
        EmeXml.add(header, EmeXml.MSG, "Verb", "reply");
        EmeXml.add(header, EmeXml.MSG, "Noun", noun);
        EmeXml.add(header, EmeXml.MSG, "Timestamp", time(Instant.now()));
        EmeXml.add(header, EmeXml.MSG, "Source", settings.owner);
        Element reply = EmeXml.add(root, EmeXml.MSG, "Reply", null);
        EmeXml.add(reply, EmeXml.MSG, "Result", "OK");
        return doc;
    }

    private static Element payload(Document doc) {
        return EmeXml.add(doc.getDocumentElement(), EmeXml.MSG, "Payload", null);
    }

    /** Signs the ResponseMessage as its own document and wraps the signed bytes in an envelope. */
    private Source answer(Document doc) throws Exception {
        if (settings.signer != null) {
            EmeXml.sign(doc, settings.signer);
        }
        byte[] message = EmeXml.serialize(doc.getDocumentElement());
        String ns = soap12 ? SOAPConstants.URI_NS_SOAP_1_2_ENVELOPE : SOAPConstants.URI_NS_SOAP_1_1_ENVELOPE;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(("<S:Envelope xmlns:S=\"" + ns + "\"><S:Body>").getBytes(StandardCharsets.UTF_8));
        out.write(message);
        out.write("</S:Body></S:Envelope>".getBytes(StandardCharsets.UTF_8));
        if (settings.dumpDir != null) {
            Files.write(settings.dumpDir.resolve("response-" + System.nanoTime() + ".xml"), message);
        }
        return new StreamSource(new ByteArrayInputStream(out.toByteArray()));
    }

    private SOAPFaultException fault(EmeError error) {
        try {
            SOAPFactory factory = SOAPFactory.newInstance(
                    soap12 ? SOAPConstants.SOAP_1_2_PROTOCOL : SOAPConstants.SOAP_1_1_PROTOCOL);
            String ns = soap12 ? SOAPConstants.URI_NS_SOAP_1_2_ENVELOPE : SOAPConstants.URI_NS_SOAP_1_1_ENVELOPE;
            String code = soap12 ? (error.client ? "Sender" : "Receiver") : (error.client ? "Client" : "Server");
            SOAPFault fault = factory.createFault(error.code + ": " + error.getMessage(), new QName(ns, code));
            Detail detail = fault.addDetail();
            SOAPElement faultMessage = detail.addDetailEntry(new QName(EmeXml.MSG, "FaultMessage", "msg"));
            SOAPElement reply = faultMessage.addChildElement("Reply", "msg", EmeXml.MSG);
            reply.addChildElement("Result", "msg", EmeXml.MSG).addTextNode("FAILED");
            SOAPElement err = reply.addChildElement("Error", "msg", EmeXml.MSG);
            err.addChildElement("code", "msg", EmeXml.MSG).addTextNode(error.code);
            err.addChildElement("level", "msg", EmeXml.MSG).addTextNode("FATAL");
            err.addChildElement("details", "msg", EmeXml.MSG).addTextNode(error.getMessage());
            return new SOAPFaultException(fault);
        } catch (Exception e) {
            throw new IllegalStateException("cannot build a SOAP fault", e);
        }
    }
}
