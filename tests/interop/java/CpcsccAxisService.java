import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.security.MessageDigest;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.Iterator;
import java.util.List;
import java.util.TimeZone;
import java.util.concurrent.atomic.AtomicInteger;

import javax.activation.DataHandler;
import javax.activation.DataSource;
import javax.xml.namespace.QName;
import javax.xml.soap.AttachmentPart;

import org.apache.axis.AxisFault;
import org.apache.axis.Message;
import org.apache.axis.MessageContext;
import org.apache.axis.attachments.Attachments;
import org.apache.axis.handlers.BasicHandler;
import org.apache.axis.session.Session;
import org.w3c.dom.Element;
import org.w3c.dom.Node;

/**
 * A minimal CPCSCC concentrador as an Axis 1.4 pivot handler, for interop tests.
 *
 * It is deliberately written against Axis's own message API (not our
 * reconstruction of the schema), so what our client must cope with is what
 * Axis produces: HTTP/1.0 close-delimited answers, DIME with 1 MiB chunked
 * records, Set-Cookie/Set-Cookie2 sessions, faults with HTTP 500.
 *
 * State lives in a directory:
 * {@code published/<TYPE>/<NAME>} are the files offered (blocks are just
 * files named NAME.k_n), {@code delivered/} gets confirmed ones,
 * {@code inbox/} gets pushed ones. Every event is one {@code key=value} line
 * on stdout, which the tests read as the server's log.
 */
public final class CpcsccAxisService extends BasicHandler {
    static final String NS = "http://simel.ree.es/cpcscc/2003/Mensajes";
    static final String SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/";
    /** The 20 real type ids in the order of CPCSCC.md §7 (the TOD answer). */
    static final List<String> TYPES = Arrays.asList(
            "CUR", "PTE", "PTF", "TAR", "INC", "OBJ", "ROB", "FIR", "AGR", "MAG",
            "INV", "DIS", "RIS", "NOS", "OSI", "OSP", "OSA", "OSG", "OSE", "OSD");
    private static final AtomicInteger SESSIONS = new AtomicInteger();

    private final File published;
    private final File delivered;
    private final File inbox;
    private final PrintStream log;

    CpcsccAxisService(File stateDir, PrintStream log) {
        this.published = new File(stateDir, "published");
        this.delivered = new File(stateDir, "delivered");
        this.inbox = new File(stateDir, "inbox");
        this.delivered.mkdirs();
        this.inbox.mkdirs();
        this.log = log;
    }

    private synchronized void event(String line) {
        log.println(line);
        log.flush();
    }

    @Override
    public void invoke(MessageContext context) throws AxisFault {
        Message request = context.getRequestMessage();
        Element body = bodyOf(request);
        Element operation = firstChildElement(body);
        String name = operation == null ? "" : operation.getLocalName();
        String[] length = request.getMimeHeaders().getHeader("Content-Length");
        event("request=" + name + ",session=" + sessionNumber(context)
                + ",soapaction=" + context.getSOAPActionURI()
                + ",content_length=" + (length == null ? "none" : length[0])
                + ",concentrador=" + concentradorId(request));
        String answer;
        File attachment = null;
        switch (name) {
            case "peticionFechaHora":
                answer = "<cp:peticionFechaHoraResponse xmlns:cp=\"" + NS + "\"><cp:fechaHora>"
                        + now() + "</cp:fechaHora></cp:peticionFechaHoraResponse>";
                break;
            case "informacionDisponible":
                answer = listing(operation);
                break;
            case "recogerFichero":
                attachment = published(text(operation, "nombreFichero"));
                answer = "<cp:recogerFicheroResponse xmlns:cp=\"" + NS + "\"><cp:Fichero><cp:Nombre>"
                        + attachment.getName() + "</cp:Nombre><cp:Checksum>"
                        + md5(attachment) + "</cp:Checksum></cp:Fichero></cp:recogerFicheroResponse>";
                event("served=" + attachment.getName() + "," + attachment.length());
                break;
            case "confirmacionRecepcionFichero":
                answer = codigo("confirmacionRecepcionFicheroResponse",
                        confirm(text(operation, "nombreFichero"),
                                text(operation, "codConfirmacion")));
                break;
            case "enviarFichero":
                answer = codigo("enviarFicheroResponse", receive(request, operation));
                break;
            default:
                throw new AxisFault(new QName(SOAP_ENV, "Client"),
                        "unknown operation " + name, null, null);
        }
        Message response = new Message(envelope(answer));
        if (attachment != null) {
            response.getAttachmentsImpl().setSendType(Attachments.SEND_TYPE_DIME);
            AttachmentPart part = response.createAttachmentPart();
            part.setDataHandler(new DataHandler(new Bzip2File(attachment)));
            response.addAttachmentPart(part);
        }
        context.setResponseMessage(response);
    }

    /** A number per HTTP session: equal numbers prove the client sent the cookie back. */
    private static int sessionNumber(MessageContext context) {
        Session session = context.getSession();
        if (session == null) {
            return -1;
        }
        synchronized (session) {
            Object number = session.get("number");
            if (number == null) {
                number = SESSIONS.incrementAndGet();
                session.set("number", number);
            }
            return (Integer) number;
        }
    }

    private String listing(Element operation) throws AxisFault {
        List<String> requested = new ArrayList<>();
        for (Element tipo : descendants(operation, "TipoFichero")) {
            requested.add(tipo.getAttribute("id"));
        }
        if (requested.contains("TOD")) {
            if (requested.size() > 1) {
                throw new AxisFault(new QName(SOAP_ENV, "Client.TOD"),
                        "TOD must be requested alone", null, null);
            }
            requested = TYPES;
        }
        StringBuilder xml = new StringBuilder("<cp:informacionDisponibleResponse xmlns:cp=\"")
                .append(NS).append("\"><cp:listaTipos>");
        for (String type : requested) {
            xml.append("<cp:TipoFichero id=\"").append(type).append("\">");
            File[] files = new File(published, type).listFiles();
            if (files != null) {
                Arrays.sort(files);
                for (File file : files) {
                    xml.append("<cp:DatosFichero nombre=\"").append(file.getName())
                            .append("\" longitud=\"").append((file.length() + 1023) / 1024)
                            .append("\"/>");
                }
            }
            xml.append("</cp:TipoFichero>");
        }
        return xml.append("</cp:listaTipos></cp:informacionDisponibleResponse>").toString();
    }

    private File published(String name) throws AxisFault {
        File[] types = published.listFiles();
        if (types != null && safe(name)) {
            for (File type : types) {
                File file = new File(type, name);
                if (file.isFile()) {
                    return file;
                }
            }
        }
        throw new AxisFault(new QName(SOAP_ENV, "Client.Fichero"),
                "file " + name + " is not published", null, null);
    }

    /** Code 0 moves the original (or all of its blocks) aside; a block name alone is refused. */
    private int confirm(String name, String code) {
        event("confirm=" + name + "," + code);
        if (!"0".equals(code)) {
            return 0;
        }
        int moved = 0;
        File[] types = published.listFiles();
        if (types != null && safe(name)) {
            for (File type : types) {
                File[] files = type.listFiles();
                for (File file : files == null ? new File[0] : files) {
                    String candidate = file.getName();
                    if (candidate.equals(name) || isBlockOf(candidate, name)) {
                        moved += file.renameTo(new File(delivered, candidate)) ? 1 : 0;
                    }
                }
            }
        }
        return moved > 0 ? 0 : 1;
    }

    private static boolean isBlockOf(String candidate, String original) {
        return candidate.startsWith(original + ".")
                && candidate.substring(original.length() + 1).matches("[0-9]+_[0-9]+");
    }

    private int receive(Message request, Element operation) throws AxisFault {
        String name = text(operation, "Nombre");
        String checksum = text(operation, "Checksum");
        Iterator<?> parts = request.getAttachments();
        if (!safe(name) || !parts.hasNext()) {
            event("received=" + name + ",refused");
            return 2;
        }
        AttachmentPart part = (AttachmentPart) parts.next();
        File target = new File(inbox, name);
        String digest;
        long length = 0;
        try (InputStream in = part.getDataHandler().getInputStream();
                OutputStream out = new FileOutputStream(target)) {
            MessageDigest md5 = MessageDigest.getInstance("MD5");
            byte[] buffer = new byte[65536];
            int n;
            while ((n = in.read(buffer)) > 0) {
                md5.update(buffer, 0, n);
                out.write(buffer, 0, n);
                length += n;
            }
            digest = hex(md5.digest());
        } catch (Exception exc) {
            throw AxisFault.makeFault(exc);
        }
        int codigo = digest.equalsIgnoreCase(checksum) ? 0 : 1;
        if (codigo != 0) {
            target.delete();
        }
        event("received=" + name + "," + length + "," + digest + "," + codigo);
        return codigo;
    }

    private static boolean safe(String name) {
        return name != null && !name.isEmpty() && !name.contains("/") && !name.contains("\\")
                && !name.startsWith(".");
    }

    private static String codigo(String wrapper, int codigo) {
        return "<cp:" + wrapper + " xmlns:cp=\"" + NS + "\"><cp:codigo>" + codigo
                + "</cp:codigo></cp:" + wrapper + ">";
    }

    private static String envelope(String body) {
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\""
                + SOAP_ENV + "\"><soapenv:Body>" + body + "</soapenv:Body></soapenv:Envelope>";
    }

    private static String now() {
        SimpleDateFormat format = new SimpleDateFormat("dd/MM/yyyy HH:mm:ss");
        format.setTimeZone(TimeZone.getTimeZone("Europe/Madrid"));
        return format.format(new Date());
    }

    private static Element bodyOf(Message message) throws AxisFault {
        try {
            Element envelope = message.getSOAPEnvelope().getAsDOM();
            for (Element child : children(envelope)) {
                if ("Body".equals(child.getLocalName())) {
                    return child;
                }
            }
        } catch (Exception exc) {
            throw AxisFault.makeFault(exc);
        }
        throw new AxisFault("no SOAP Body");
    }

    private static String concentradorId(Message message) {
        try {
            Element envelope = message.getSOAPEnvelope().getAsDOM();
            List<Element> ids = descendants(envelope, "id");
            return ids.isEmpty() ? "none" : ids.get(0).getTextContent().trim();
        } catch (Exception exc) {
            return "unreadable";
        }
    }

    private static String text(Element scope, String localName) {
        List<Element> found = descendants(scope, localName);
        return found.isEmpty() ? null : found.get(0).getTextContent().trim();
    }

    private static Element firstChildElement(Element parent) {
        List<Element> all = children(parent);
        return all.isEmpty() ? null : all.get(0);
    }

    private static List<Element> children(Element parent) {
        List<Element> found = new ArrayList<>();
        for (Node node = parent.getFirstChild(); node != null; node = node.getNextSibling()) {
            if (node instanceof Element) {
                found.add((Element) node);
            }
        }
        return found;
    }

    /** Matched by local name, with or without the cp namespace, like CPCSCC readers. */
    private static List<Element> descendants(Element scope, String localName) {
        List<Element> found = new ArrayList<>();
        for (Element child : children(scope)) {
            if (localName.equals(child.getLocalName())) {
                found.add(child);
            }
            found.addAll(descendants(child, localName));
        }
        return found;
    }

    private static String md5(File file) throws AxisFault {
        try (InputStream in = new FileInputStream(file)) {
            MessageDigest md5 = MessageDigest.getInstance("MD5");
            byte[] buffer = new byte[65536];
            int n;
            while ((n = in.read(buffer)) > 0) {
                md5.update(buffer, 0, n);
            }
            return hex(md5.digest());
        } catch (Exception exc) {
            throw AxisFault.makeFault(exc);
        }
    }

    static String hex(byte[] bytes) {
        StringBuilder hex = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            hex.append(String.format("%02x", b & 0xff));
        }
        return hex.toString();
    }

    /** Streams a published file typed application/x-bzip2, as CPCSCC's DIME record 2. */
    private static final class Bzip2File implements DataSource {
        private final File file;

        Bzip2File(File file) { this.file = file; }

        public String getContentType() { return "application/x-bzip2"; }
        public InputStream getInputStream() throws IOException { return new FileInputStream(file); }
        public String getName() { return file.getName(); }
        public OutputStream getOutputStream() throws IOException {
            throw new IOException("read-only data source");
        }
    }
}
