import java.io.InputStream;
import java.security.MessageDigest;
import java.util.Iterator;

import javax.xml.namespace.QName;
import javax.xml.rpc.ParameterMode;
import javax.xml.soap.AttachmentPart;

import org.apache.axis.Message;
import org.apache.axis.client.Call;
import org.apache.axis.encoding.XMLType;

/**
 * Fetches one file with recogerFichero, the way an Axis 1.4 CPCSCC client does,
 * and reports what Axis made of the DIME response.
 *
 * Usage: AxisRecogerFichero URL CONCENTRADOR_ID NOMBRE_FICHERO http10|chunked
 * Prints {@code nombre=}, {@code checksum=}, {@code attachments=}, then
 * {@code length=} and {@code md5=} of each attachment, on stdout.
 */
public final class AxisRecogerFichero {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: AxisRecogerFichero URL ID NOMBRE_FICHERO http10|chunked");
            System.exit(2);
        }
        Call call = CpcsccCall.create(args[0], "recogerFichero", args[1], args[3]);
        call.addParameter(new QName(CpcsccCall.NS, "nombreFichero"), XMLType.XSD_STRING,
                String.class, ParameterMode.IN);
        call.setReturnType(Fichero.XML_TYPE, Fichero.class);
        Fichero fichero = (Fichero) call.invoke(new Object[] {args[2]});
        System.out.println("nombre=" + fichero.getNombre());
        System.out.println("checksum=" + fichero.getChecksum());

        Message response = call.getResponseMessage();
        System.out.println("attachments=" + response.countAttachments());
        Iterator<?> parts = response.getAttachments();
        while (parts.hasNext()) {
            AttachmentPart part = (AttachmentPart) parts.next();
            MessageDigest md5 = MessageDigest.getInstance("MD5");
            long length = 0;
            // Stream it: the point is to prove Axis reads our chunked records, not to buffer them.
            try (InputStream in = part.getDataHandler().getInputStream()) {
                byte[] buffer = new byte[65536];
                int n;
                while ((n = in.read(buffer)) > 0) {
                    md5.update(buffer, 0, n);
                    length += n;
                }
            }
            System.out.println("length=" + length);
            System.out.println("md5=" + toHex(md5.digest()));
        }
    }

    private static String toHex(byte[] bytes) {
        StringBuilder hex = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            hex.append(String.format("%02x", b & 0xff));
        }
        return hex.toString();
    }
}
