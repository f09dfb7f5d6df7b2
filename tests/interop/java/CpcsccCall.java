import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Hashtable;

import javax.xml.namespace.QName;
import javax.xml.soap.AttachmentPart;
import javax.xml.soap.SOAPException;

import org.apache.axis.MessageContext;
import org.apache.axis.client.Call;
import org.apache.axis.client.Service;
import org.apache.axis.constants.Style;
import org.apache.axis.constants.Use;
import org.apache.axis.encoding.ser.BeanDeserializerFactory;
import org.apache.axis.encoding.ser.BeanSerializerFactory;
import org.apache.axis.message.SOAPHeaderElement;
import org.apache.axis.transport.http.HTTPConstants;

/**
 * Builds an Axis 1.4 JAX-RPC {@link Call} configured like a real CPCSCC
 * client: no WSDL, document/literal "wrapped", the Concentrador/id SOAP
 * header, DIME attachments, and a choice of HTTP/1.0 + Content-Length (Axis's
 * default) or HTTP/1.1 + Transfer-Encoding: chunked (what the spec's Annex 3
 * configures, to dodge the Content-Length bug).
 */
final class CpcsccCall {
    static final String NS = Fichero.NS;

    private CpcsccCall() {}

    static Call create(String url, String operation, String concentradorId, String transport)
            throws Exception {
        Call call = (Call) new Service().createCall();
        call.setTargetEndpointAddress(new URL(url));
        call.setOperationName(new QName(NS, operation));
        call.setOperationStyle(Style.WRAPPED);
        call.setOperationUse(Use.LITERAL);
        call.setUseSOAPAction(true);
        call.setSOAPActionURI(operation);
        call.setTimeout(Integer.valueOf(20000));
        call.setProperty(Call.ATTACHMENT_ENCAPSULATION_FORMAT,
                Call.ATTACHMENT_ENCAPSULATION_FORMAT_DIME);
        call.registerTypeMapping(Fichero.class, Fichero.XML_TYPE,
                new BeanSerializerFactory(Fichero.class, Fichero.XML_TYPE),
                new BeanDeserializerFactory(Fichero.class, Fichero.XML_TYPE));

        SOAPHeaderElement header = new SOAPHeaderElement(NS, "Concentrador");
        header.setMustUnderstand(false);
        header.addChildElement("id", "cp", NS).addTextNode(concentradorId);
        call.addHeader(header);

        if ("chunked".equals(transport)) {
            call.setProperty(MessageContext.HTTP_TRANSPORT_VERSION,
                    HTTPConstants.HEADER_PROTOCOL_V11);
            Hashtable<String, String> headers = new Hashtable<>();
            headers.put(HTTPConstants.HEADER_TRANSFER_ENCODING,
                    HTTPConstants.HEADER_TRANSFER_ENCODING_CHUNKED);
            call.setProperty(HTTPConstants.REQUEST_HEADERS, headers);
        } else if (!"http10".equals(transport)) {
            throw new IllegalArgumentException("transport must be http10 or chunked: " + transport);
        }
        return call;
    }

    /**
     * {length, md5 hex} of an attachment as Axis hands it to the application,
     * streamed: the point is to prove Axis reads our (chunked) records, not
     * to buffer them.
     */
    static String[] digest(AttachmentPart part)
            throws IOException, SOAPException, NoSuchAlgorithmException {
        MessageDigest md5 = MessageDigest.getInstance("MD5");
        long length = 0;
        try (InputStream in = part.getDataHandler().getInputStream()) {
            byte[] buffer = new byte[65536];
            int n;
            while ((n = in.read(buffer)) > 0) {
                md5.update(buffer, 0, n);
                length += n;
            }
        }
        return new String[] {String.valueOf(length), CpcsccAxisService.hex(md5.digest())};
    }
}
