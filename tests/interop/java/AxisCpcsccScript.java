import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Iterator;
import java.util.List;
import java.util.Vector;

import javax.activation.DataHandler;
import javax.activation.DataSource;
import javax.xml.namespace.QName;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.rpc.ParameterMode;
import javax.xml.soap.AttachmentPart;

import org.apache.axis.AxisFault;
import org.apache.axis.Message;
import org.apache.axis.client.Call;
import org.apache.axis.encoding.XMLType;
import org.apache.axis.message.SOAPBodyElement;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;
import org.xml.sax.InputSource;

/**
 * Runs a script of CPCSCC calls with the Apache Axis 1.4 client, one JVM for
 * all of them (a JVM start costs about a second; the suite has a budget).
 *
 * Usage: AxisCpcsccScript URL CONCENTRADOR_ID SCRIPT_FILE
 *
 * Each script line is {@code LABEL TRANSPORT OPERATION ARGS...} with
 * TRANSPORT {@code http10} (Axis's default, Content-Length) or
 * {@code chunked} (HTTP/1.1 Transfer-Encoding: chunked), and OPERATION one of
 * {@code fecha}, {@code informacion TYPE[,TYPE...]}, {@code recoger NAME},
 * {@code confirmar NAME CODE}, {@code enviar NAME CHECKSUM FILE}.
 *
 * Output, one {@code LABEL.key=value} line each: {@code fechaHora};
 * {@code tipo} per TipoFichero and {@code file=TYPE/NAME/LONGITUD} per
 * DatosFichero; {@code nombre}, {@code checksum}, {@code attachments},
 * {@code length}, {@code md5}; {@code codigo}. A SOAP fault prints
 * {@code faultcode} (local part) and {@code faultstring}; any other failure
 * {@code error}. A failing step never stops the script.
 *
 * TLS: the standard javax.net.ssl.* system properties (keystore = our
 * client certificate, truststore = the CA); Debian's Axis checks the host
 * name against the certificate's DNS names.
 */
public final class AxisCpcsccScript {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: AxisCpcsccScript URL CONCENTRADOR_ID SCRIPT_FILE");
            System.exit(2);
        }
        List<String> lines = Files.readAllLines(new File(args[2]).toPath(), StandardCharsets.UTF_8);
        for (String line : lines) {
            String[] step = line.trim().split("\\s+");
            if (step.length < 3) {
                continue;
            }
            String label = step[0];
            try {
                run(args[0], args[1], step);
            } catch (AxisFault fault) {
                print(label, "faultcode", fault.getFaultCode().getLocalPart());
                print(label, "faultstring", oneLine(fault.getFaultString()));
            } catch (Exception exc) {
                print(label, "error", oneLine(exc.toString()));
            }
        }
    }

    private static void run(String url, String id, String[] step) throws Exception {
        String label = step[0];
        String transport = step[1];
        switch (step[2]) {
            case "fecha": {
                Call call = CpcsccCall.create(url, "peticionFechaHora", id, transport);
                call.setReturnType(XMLType.XSD_STRING);
                print(label, "fechaHora", String.valueOf(call.invoke(new Object[0])));
                break;
            }
            case "informacion":
                informacion(CpcsccCall.create(url, "informacionDisponible", id, transport),
                        label, step[3].split(","));
                break;
            case "recoger":
                recoger(CpcsccCall.create(url, "recogerFichero", id, transport), label, step[3]);
                break;
            case "confirmar": {
                Call call = CpcsccCall.create(url, "confirmacionRecepcionFichero", id, transport);
                call.addParameter(new QName(CpcsccCall.NS, "nombreFichero"), XMLType.XSD_STRING,
                        String.class, ParameterMode.IN);
                call.addParameter(new QName(CpcsccCall.NS, "codConfirmacion"), XMLType.XSD_INT,
                        Integer.class, ParameterMode.IN);
                call.setReturnType(XMLType.XSD_INT);
                Object codigo = call.invoke(new Object[] {step[3], Integer.valueOf(step[4])});
                print(label, "codigo", String.valueOf(codigo));
                break;
            }
            case "enviar": {
                Call call = CpcsccCall.create(url, "enviarFichero", id, transport);
                call.addParameter(new QName(CpcsccCall.NS, "Fichero"), Fichero.XML_TYPE,
                        Fichero.class, ParameterMode.IN);
                call.setReturnType(XMLType.XSD_INT);
                call.addAttachmentPart(new DataHandler(new Bzip2FileSource(new File(step[5]))));
                Object codigo = call.invoke(new Object[] {new Fichero(step[3], step[4])});
                print(label, "codigo", String.valueOf(codigo));
                break;
            }
            default:
                throw new IllegalArgumentException("unknown operation " + step[2]);
        }
    }

    /**
     * informacionDisponible has a nested answer (types with attributes and
     * file lists), so it goes as an Axis "message" call: the body element is
     * sent as written and the answer read as DOM, still through Axis's HTTP
     * transport, headers and fault handling.
     */
    private static void informacion(Call call, String label, String[] types) throws Exception {
        StringBuilder xml = new StringBuilder("<informacionDisponible xmlns=\"")
                .append(CpcsccCall.NS).append("\"><listaTipos>");
        for (String type : types) {
            xml.append("<TipoFichero id=\"").append(type).append("\"/>");
        }
        xml.append("</listaTipos></informacionDisponible>");
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        Element request = factory.newDocumentBuilder()
                .parse(new InputSource(new StringReader(xml.toString()))).getDocumentElement();
        Vector<?> answer = (Vector<?>) call.invoke(new Object[] {new SOAPBodyElement(request)});
        Element response = ((SOAPBodyElement) answer.get(0)).getAsDOM();
        NodeList tipos = response.getElementsByTagNameNS(CpcsccCall.NS, "TipoFichero");
        for (int i = 0; i < tipos.getLength(); i++) {
            Element tipo = (Element) tipos.item(i);
            String id = tipo.getAttribute("id");
            print(label, "tipo", id);
            for (Node node = tipo.getFirstChild(); node != null; node = node.getNextSibling()) {
                if (node instanceof Element && "DatosFichero".equals(node.getLocalName())) {
                    Element datos = (Element) node;
                    print(label, "file", id + "/" + datos.getAttribute("nombre") + "/"
                            + datos.getAttribute("longitud"));
                }
            }
        }
    }

    private static void recoger(Call call, String label, String name) throws Exception {
        call.addParameter(new QName(CpcsccCall.NS, "nombreFichero"), XMLType.XSD_STRING,
                String.class, ParameterMode.IN);
        call.setReturnType(Fichero.XML_TYPE, Fichero.class);
        Fichero fichero = (Fichero) call.invoke(new Object[] {name});
        print(label, "nombre", fichero.getNombre());
        print(label, "checksum", fichero.getChecksum());
        Message response = call.getResponseMessage();
        print(label, "attachments", String.valueOf(response.countAttachments()));
        Iterator<?> parts = response.getAttachments();
        while (parts.hasNext()) {
            String[] digest = CpcsccCall.digest((AttachmentPart) parts.next());
            print(label, "length", digest[0]);
            print(label, "md5", digest[1]);
        }
    }

    private static void print(String label, String key, String value) {
        System.out.println(label + "." + key + "=" + value);
        System.out.flush();
    }

    private static String oneLine(String text) {
        return text == null ? "" : text.replace('\r', ' ').replace('\n', ' ');
    }

    /** Streams the file with the bzip2 media type, so the DIME record is typed like CPCSCC's. */
    private static final class Bzip2FileSource implements DataSource {
        private final File file;

        Bzip2FileSource(File file) { this.file = file; }

        public String getContentType() { return "application/x-bzip2"; }
        public InputStream getInputStream() throws IOException { return new FileInputStream(file); }
        public String getName() { return file.getName(); }
        public OutputStream getOutputStream() throws IOException {
            throw new IOException("read-only data source");
        }
    }
}
